import { dedupeId, type ProfileEvent } from '@pstream/events';
import type { PoolClient } from '@pstream/platform';
import type { EventRows } from './fold';
import { pgArray } from './pg-array';

/**
 * Records each event's dedupe key — (source, `eventId@profileKey`), the rule both stores share
 * (see @pstream/events dedupeId) — and returns those recorded now (first occurrence wins).
 *
 * Nearly every key is new (a redelivery is skipped by the consumer position before this), so the
 * keys are first inserted plainly, in a savepoint: one primary-key descent a row, where `ON CONFLICT`
 * probes the index first and writes a speculative row and its confirmation (BENCHMARKS.md "The
 * dedupe records without speculative insertion"). Only when a key exists — a producer's re-send, or
 * one a concurrent transaction committed while this one waited on it — does the savepoint roll back
 * and the `ON CONFLICT DO NOTHING` statement pick the unseen ones, as before.
 */
export async function keepUnseen(client: PoolClient, events: ProfileEvent[]): Promise<ProfileEvent[]> {
  if (events.length === 0) return [];
  const ids = events.map(dedupeId);
  // A key twice in the chunk: its first occurrence is the event, the rest are seen. The ids under
  // their source (a chunk has one or a few), so no joined key string is made per event.
  const firsts = new Map<string, Set<string>>();
  const unique: number[] = [];
  for (let i = 0; i < events.length; i++) {
    const source = events[i]!.source;
    let seen = firsts.get(source);
    if (seen === undefined) firsts.set(source, (seen = new Set()));
    const id = ids[i]!;
    if (!seen.has(id)) {
      seen.add(id);
      unique.push(i);
    }
  }
  const params = [
    pgArray(unique.map((i) => events[i]!.source)),
    pgArray(unique.map((i) => ids[i]!)),
    pgArray(unique.map((i) => events[i]!.receivedAt)),
  ];
  const insert = `INSERT INTO applied_events (source, event_id, received_at)
     SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])`;
  await client.query('SAVEPOINT keep_unseen');
  try {
    await client.query(insert, params);
    await client.query('RELEASE SAVEPOINT keep_unseen');
    return unique.map((i) => events[i]!);
  } catch (err) {
    if ((err as { code?: string }).code !== UNIQUE_VIOLATION) throw err;
    await client.query('ROLLBACK TO SAVEPOINT keep_unseen');
  }
  const { rows } = await client.query<{ source: string; event_id: string }>(
    `${insert} ON CONFLICT DO NOTHING RETURNING source, event_id`,
    params,
  );
  const inserted = new Set(rows.map((r) => `${r.source}\u0000${r.event_id}`));
  return events.filter((e, i) => inserted.delete(`${e.source}\u0000${ids[i]}`));
}

/** SQLSTATE unique_violation: a dedupe key already recorded. */
const UNIQUE_VIOLATION = '23505';

/** Column `k` of `rows` as one array parameter. */
const col = <T, K extends keyof T>(rows: readonly T[], k: K) =>
  pgArray(rows.map((r) => r[k] as string | number | boolean | null));

/** Per person, what the purchases inserted now add (totals for people, see lifecycle.ts FactGain). */
export type PurchaseGains = Map<string, { n: number; total: string; unconverted: number; first: Date; last: Date }>;

/**
 * Applies a batch's folded rows except the people row, and returns what the new purchases add to
 * it. One statement writes the counts, the purchases, the daily activity and the follow history
 * (data-modifying CTEs, one round trip: each table's rows are independent of the others'); the
 * follows go in a second one, after the history, whose rows `follow_since` reads. The people row
 * takes the chunk's facts together with its evaluation (lifecycle.ts evaluatePeople), so it is
 * written once.
 */
export async function applyEventRows(client: PoolClient, rows: EventRows): Promise<PurchaseGains> {
  const gains: PurchaseGains = new Map();
  const values: unknown[] = [];
  /** `$n` of the next parameter, for `v`. */
  const $ = (v: unknown) => {
    values.push(v);
    return `$${values.length}`;
  };
  const c = rows.counts;
  const parts = [
    `counted AS (
       INSERT INTO event_counts AS c (profile_key, type, n)
       SELECT * FROM unnest(${$(col(c, 'key'))}::text[], ${$(col(c, 'type'))}::text[], ${$(col(c, 'n'))}::bigint[])
       ON CONFLICT (profile_key, type) DO UPDATE SET n = c.n + excluded.n)`,
  ];
  if (rows.activity.length > 0) {
    // Appended, never upserted (migration 070): no key to probe, no older row to update.
    const a = rows.activity;
    parts.push(`appended AS (
       INSERT INTO activity (profile_key, day, type, target_type, target_id, tags, n)
       SELECT * FROM unnest(${$(col(a, 'key'))}::text[], ${$(col(a, 'day'))}::date[], ${$(col(a, 'type'))}::text[],
                            ${$(col(a, 'targetType'))}::text[], ${$(col(a, 'targetId'))}::text[], ${$(col(a, 'tags'))}::text[],
                            ${$(col(a, 'n'))}::int[]))`);
  }
  if (rows.followHistory.length > 0) {
    const h = rows.followHistory;
    parts.push(`followed AS (
       INSERT INTO follow_history (source, event_id, profile_key, target_type, target_id, action, at)
       SELECT * FROM unnest(${$(col(h, 'source'))}::text[], ${$(col(h, 'eventId'))}::text[], ${$(col(h, 'key'))}::text[],
                            ${$(col(h, 'targetType'))}::text[], ${$(col(h, 'targetId'))}::text[], ${$(col(h, 'action'))}::text[],
                            ${$(col(h, 'at'))}::timestamptz[])
       ON CONFLICT DO NOTHING)`);
  }
  let answer = 'SELECT NULL::text AS profile_key WHERE false';
  if (rows.purchases.length > 0) {
    const ps = rows.purchases;
    // Only purchases inserted now touch the totals, so a purchase is never added twice. An order
    // counts once (§4.2): when none of its lines was stored before (this statement's snapshot does
    // not see the rows its own INSERT adds); a line without an order counts on its own.
    parts.push(
      `ins AS (
         INSERT INTO purchases (profile_key, source, event_id, occurred_at, amount, currency, base_amount, order_id)
         SELECT * FROM unnest(${$(col(ps, 'key'))}::text[], ${$(col(ps, 'source'))}::text[], ${$(col(ps, 'eventId'))}::text[],
                              ${$(col(ps, 'at'))}::timestamptz[], ${$(col(ps, 'amount'))}::numeric[], ${$(col(ps, 'currency'))}::text[],
                              ${$(col(ps, 'baseAmount'))}::numeric[], ${$(col(ps, 'orderId'))}::text[])
         ON CONFLICT DO NOTHING RETURNING profile_key, source, order_id, occurred_at, base_amount
       )`,
      `lines AS (
         SELECT i.*, i.order_id IS NOT NULL AND EXISTS (
                  SELECT 1 FROM purchases x WHERE x.profile_key = i.profile_key AND x.source = i.source AND x.order_id = i.order_id) AS known_order
         FROM ins i
       )`,
    );
    answer = `SELECT profile_key,
                (count(*) FILTER (WHERE order_id IS NULL)
                  + count(DISTINCT (source, order_id)) FILTER (WHERE order_id IS NOT NULL AND NOT known_order))::int AS n,
                coalesce(sum(base_amount), 0)::text AS total, count(*) FILTER (WHERE base_amount IS NULL)::int AS unconverted,
                min(occurred_at) AS first, max(occurred_at) AS last
              FROM lines GROUP BY profile_key`;
  }
  const { rows: agg } = await client.query<{
    profile_key: string;
    n: number;
    total: string;
    unconverted: number;
    first: Date;
    last: Date;
  }>(`WITH ${parts.join(',\n')}\n${answer}`, values);
  for (const { profile_key, ...gain } of agg) gains.set(profile_key, gain);
  if (rows.follows.length > 0) {
    const f = rows.follows;
    // The latest follow/unfollow by event time wins; a late, older one only goes to the history.
    // `since` comes from the history (migration 007 follow_since), recomputed whenever a pair is
    // touched: a late unfollow between two follows moves it, whatever the chunking.
    await client.query(
      `INSERT INTO follows AS f (profile_key, target_type, target_id, following, since, changed_at)
       SELECT k, tt, ti, fl, CASE WHEN fl THEN follow_since(k, tt, ti, at) END, at
       FROM unnest($1::text[], $2::text[], $3::text[], $4::boolean[], $5::timestamptz[]) AS t(k, tt, ti, fl, at)
       ON CONFLICT (profile_key, target_type, target_id) DO UPDATE SET
         following = CASE WHEN excluded.changed_at >= f.changed_at THEN excluded.following ELSE f.following END,
         since = CASE WHEN excluded.changed_at >= f.changed_at THEN excluded.since
                      ELSE follow_since(f.profile_key, f.target_type, f.target_id, f.changed_at) END,
         changed_at = greatest(f.changed_at, excluded.changed_at)
       WHERE excluded.changed_at >= f.changed_at OR f.following`,
      [col(f, 'key'), col(f, 'targetType'), col(f, 'targetId'), col(f, 'following'), col(f, 'at')],
    );
  }
  return gains;
}
