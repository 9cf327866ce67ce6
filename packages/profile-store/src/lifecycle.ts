import {
  DAY_MS,
  evaluate,
  isReactivation,
  nextReviewAt,
  purchaseHorizonDays,
  type LifecycleRules,
  type Stage,
} from '@pstream/lifecycle';
import type { PoolClient } from '@pstream/platform';

/** Why a stage was (re-)evaluated: new events, a merge, or time passing (the sweep). */
export type Cause = 'event' | 'merge' | 'time';

export type Transition = { key: string; from: Stage | null; to: Stage; reason: string };

/** The reason recorded with a change; a return from at_risk/churned is always a reactivation. */
export function reasonFor(from: Stage | null, to: Stage, cause: Cause): string {
  if (from === null) return 'first_seen';
  if (isReactivation(from, to)) return 'reactivation';
  return cause;
}

/**
 * Re-evaluates stage and tiers of `causes`' people at `nowMs` (wall clock, never event time, so
 * a late event cannot move anyone backwards), stores them with the next review instant, and
 * records every stage change in lifecycle_transitions and the outbox, in the caller's
 * transaction. Returns the changes.
 */
export async function evaluatePeople(
  client: PoolClient,
  causes: ReadonlyMap<string, Cause>,
  nowMs: number,
  rules: LifecycleRules,
): Promise<Transition[]> {
  if (causes.size === 0) return [];
  const horizon = new Date(nowMs - purchaseHorizonDays(rules) * DAY_MS).toISOString();
  const { rows } = await client.query<{
    profile_key: string;
    stage: Stage | null;
    last_active_at: Date | null;
    first_purchase_at: Date | null;
    recent_social: Date[];
    recent: [number, number][];
  }>(
    `SELECT p.profile_key, p.stage, p.last_active_at, p.first_purchase_at, p.recent_social,
            coalesce((SELECT json_agg(json_build_array(extract(epoch FROM x.occurred_at) * 1000, coalesce(x.base_amount, 0)))
                      FROM purchases x WHERE x.profile_key = p.profile_key AND x.occurred_at >= $2), '[]') AS recent
     FROM people p WHERE p.profile_key = ANY($1::text[])`,
    [[...causes.keys()], horizon],
  );
  const out = { key: [] as string[], stage: [] as (Stage | null)[], changed: [] as boolean[], value: [] as string[], social: [] as string[], next: [] as (string | null)[] };
  const changes: Transition[] = [];
  for (const r of rows) {
    const facts = {
      lastActiveAtMs: r.last_active_at?.getTime() ?? null,
      firstPurchaseAtMs: r.first_purchase_at?.getTime() ?? null,
      purchases: r.recent.map(([atMs, amount]) => ({ atMs: Number(atMs), amount: Number(amount) })),
      socialTimesMs: r.recent_social.map((d) => d.getTime()),
    };
    const e = evaluate(facts, nowMs, rules);
    const next = nextReviewAt(facts, nowMs, rules);
    const changed = e.stage !== r.stage && e.stage !== null;
    if (changed) changes.push({ key: r.profile_key, from: r.stage, to: e.stage!, reason: reasonFor(r.stage, e.stage!, causes.get(r.profile_key) ?? 'event') });
    out.key.push(r.profile_key);
    out.stage.push(e.stage);
    out.changed.push(changed);
    out.value.push(e.value);
    out.social.push(e.social);
    out.next.push(next === null ? null : new Date(next).toISOString());
  }
  const nowIso = new Date(nowMs).toISOString();
  await client.query(
    `UPDATE people p SET stage = t.stage, stage_since = CASE WHEN t.changed THEN $7 ELSE p.stage_since END,
                         value_tier = t.value, social_tier = t.social, next_review_at = t.next, stage_evaluated_at = $7
     FROM unnest($1::text[], $2::text[], $3::boolean[], $4::text[], $5::text[], $6::timestamptz[]) AS t(k, stage, changed, value, social, next)
     WHERE p.profile_key = t.k`,
    [out.key, out.stage, out.changed, out.value, out.social, out.next, nowIso],
  );
  if (changes.length > 0) {
    // The outbox row is written in the same transaction as the change: published iff recorded.
    await client.query(
      `WITH t AS (
         INSERT INTO lifecycle_transitions (profile_key, from_stage, to_stage, at, reason)
         SELECT k, f, s, $5, r FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS x(k, f, s, r)
         RETURNING id, profile_key, from_stage, to_stage, at, reason
       )
       INSERT INTO lifecycle_outbox (profile_key, payload)
       SELECT profile_key, jsonb_build_object('userId', profile_key, 'from', from_stage, 'to', to_stage,
                'at', to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), 'reason', reason, 'transitionId', id::text)
       FROM t ORDER BY id`,
      [changes.map((c) => c.key), changes.map((c) => c.from), changes.map((c) => c.to), changes.map((c) => c.reason), nowIso],
    );
  }
  return changes;
}
