import type { ProfileEvent } from '@pstream/events';
import { isReactivation, stageAt, type LifecycleRules, type Stage } from '@pstream/lifecycle';
import type { Pool, PoolClient } from '@pstream/platform';
import { foldFacts } from './facts';

export type Transition = { profileKey: string; from: Stage | null; to: Stage; at: string; reason: string };

const DAY_MS = 86_400_000;

/**
 * Postgres side of the segmenter. A batch is applied in one transaction: dedupe records, facts,
 * purchases and stage changes commit together or not at all, with one multi-row statement per
 * table rather than a query per event.
 */
export function createFactsRepository(pool: Pool, rules: LifecycleRules) {
  return {
    /** Applies the events not applied before; returns the lifecycle transitions it caused. */
    async applyBatch(events: ProfileEvent[], nowMs: number): Promise<Transition[]> {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const fresh = await keepUnseen(client, events);
        const transitions = fresh.length > 0 ? await applyFacts(client, fresh, nowMs, rules) : [];
        await client.query('COMMIT');
        return transitions;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
  };
}

/** Records each event's (source, eventId); returns only those recorded now, first occurrence wins. */
async function keepUnseen(client: PoolClient, events: ProfileEvent[]): Promise<ProfileEvent[]> {
  const { rows } = await client.query<{ source: string; event_id: string }>(
    `INSERT INTO applied_events (source, event_id, received_at)
     SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
     ON CONFLICT DO NOTHING RETURNING source, event_id`,
    [events.map((e) => e.source), events.map((e) => e.eventId), events.map((e) => e.receivedAt)],
  );
  const inserted = new Set(rows.map((r) => `${r.source}|${r.event_id}`));
  return events.filter((e) => inserted.delete(`${e.source}|${e.eventId}`));
}

async function applyFacts(client: PoolClient, events: ProfileEvent[], nowMs: number, rules: LifecycleRules): Promise<Transition[]> {
  const deltas = foldFacts(events);
  const nowIso = new Date(nowMs).toISOString();
  await client.query(
    `INSERT INTO people AS p (profile_key, first_seen_at, last_active_at, stage_evaluated_at)
     SELECT k, f, l, $4 FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS t(k, f, l)
     ON CONFLICT (profile_key) DO UPDATE SET
       first_seen_at = least(p.first_seen_at, excluded.first_seen_at),
       last_active_at = greatest(p.last_active_at, excluded.last_active_at),
       updated_at = now()`,
    [
      deltas.map((d) => d.profileKey),
      deltas.map((d) => new Date(d.firstSeenMs).toISOString()),
      deltas.map((d) => new Date(d.lastActiveMs).toISOString()),
      nowIso,
    ],
  );
  const counts = deltas.flatMap((d) => [...d.counts].map(([type, n]) => ({ key: d.profileKey, type, n })));
  await client.query(
    `INSERT INTO event_counts AS c (profile_key, type, n)
     SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
     ON CONFLICT (profile_key, type) DO UPDATE SET n = c.n + excluded.n`,
    [counts.map((c) => c.key), counts.map((c) => c.type), counts.map((c) => c.n)],
  );
  const purchases = deltas.flatMap((d) => d.purchases.map((p) => ({ ...p, key: d.profileKey })));
  if (purchases.length > 0) {
    await client.query(
      `WITH ins AS (
         INSERT INTO purchases (profile_key, source, event_id, occurred_at, amount, currency)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::numeric[], $6::text[])
         ON CONFLICT DO NOTHING RETURNING profile_key, occurred_at, amount
       ), agg AS (
         SELECT profile_key, count(*) AS n, sum(amount) AS total, min(occurred_at) AS first, max(occurred_at) AS last
         FROM ins GROUP BY profile_key
       )
       UPDATE people p SET
         purchases = p.purchases + agg.n,
         monetary_total = p.monetary_total + agg.total,
         first_purchase_at = least(p.first_purchase_at, agg.first),
         last_purchase_at = greatest(p.last_purchase_at, agg.last)
       FROM agg WHERE p.profile_key = agg.profile_key`,
      [
        purchases.map((p) => p.key),
        purchases.map((p) => p.source),
        purchases.map((p) => p.eventId),
        purchases.map((p) => new Date(p.occurredMs).toISOString()),
        purchases.map((p) => p.amount),
        purchases.map((p) => p.currency),
      ],
    );
  }
  return evaluateStages(client, deltas.map((d) => d.profileKey), nowMs, rules, 'event');
}

/** Re-evaluates the stage of the given people at `nowMs`; records and returns every change. */
export async function evaluateStages(
  client: PoolClient,
  profileKeys: string[],
  nowMs: number,
  rules: LifecycleRules,
  cause: string,
): Promise<Transition[]> {
  const since = new Date(nowMs - rules.loyalWindowDays * DAY_MS).toISOString();
  const { rows } = await client.query<{
    profile_key: string;
    stage: Stage | null;
    last_active_at: Date;
    first_purchase_at: Date | null;
    recent: Date[];
  }>(
    `SELECT p.profile_key, p.stage, p.last_active_at, p.first_purchase_at,
            coalesce(array(SELECT occurred_at FROM purchases x WHERE x.profile_key = p.profile_key AND x.occurred_at >= $2), '{}') AS recent
     FROM people p WHERE p.profile_key = ANY($1::text[])`,
    [profileKeys, since],
  );
  const nowIso = new Date(nowMs).toISOString();
  const changes: Transition[] = [];
  for (const r of rows) {
    const to = stageAt(
      { lastActiveAtMs: r.last_active_at.getTime(), firstPurchaseAtMs: r.first_purchase_at?.getTime() ?? null, purchaseTimesMs: r.recent.map((d) => d.getTime()) },
      nowMs,
      rules,
    );
    if (to !== r.stage) {
      changes.push({ profileKey: r.profile_key, from: r.stage, to, at: nowIso, reason: r.stage === null ? 'first_seen' : isReactivation(r.stage, to) ? 'reactivation' : cause });
    }
  }
  await client.query('UPDATE people SET stage_evaluated_at = $2 WHERE profile_key = ANY($1::text[])', [profileKeys, nowIso]);
  if (changes.length > 0) {
    await client.query(
      `UPDATE people p SET stage = t.to_stage, stage_since = $3
       FROM unnest($1::text[], $2::text[]) AS t(k, to_stage) WHERE p.profile_key = t.k`,
      [changes.map((c) => c.profileKey), changes.map((c) => c.to), nowIso],
    );
    await client.query(
      `INSERT INTO lifecycle_transitions (profile_key, from_stage, to_stage, at, reason)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[])`,
      [changes.map((c) => c.profileKey), changes.map((c) => c.from), changes.map((c) => c.to), changes.map((c) => c.at), changes.map((c) => c.reason)],
    );
  }
  return changes;
}
