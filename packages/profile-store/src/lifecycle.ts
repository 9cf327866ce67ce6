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

/** What changed: the stage, or one of the two tiers (docs/model.md §4.3). */
export type TransitionKind = 'stage' | 'value_tier' | 'social_tier';

export type Transition = { key: string; kind: TransitionKind; from: string | null; to: string; reason: string };

/** The reason recorded with a change; a return from at_risk/churned is always a reactivation. */
export function reasonFor(from: Stage | null, to: Stage, cause: Cause): string {
  if (from === null) return 'first_seen';
  if (isReactivation(from, to)) return 'reactivation';
  return cause;
}

/**
 * Re-evaluates stage and tiers of `causes`' people at `nowMs` (wall clock, never event time, so
 * a late event cannot move anyone backwards), stores them with the next review instant, and
 * records every change of stage or tier in lifecycle_transitions and the outbox, in the caller's
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
    value_tier: string;
    social_tier: string;
    last_active_at: Date | null;
    first_purchase_at: Date | null;
    recent_social: Date[];
    recent: [number, number][];
  }>(
    `SELECT p.profile_key, p.stage, p.value_tier, p.social_tier, p.last_active_at, p.first_purchase_at, p.recent_social,
            coalesce((SELECT json_agg(json_build_array(o.at_ms, o.amount)) FROM (
                        -- One entry per order (§4.2, §4.3): at its first line, worth all its lines.
                        SELECT x.source, min(x.order_id) AS order_id, extract(epoch FROM min(x.occurred_at)) * 1000 AS at_ms,
                               coalesce(sum(x.base_amount), 0) AS amount
                        FROM purchases x WHERE x.profile_key = p.profile_key AND x.occurred_at >= $2
                        GROUP BY x.source, x.order_id IS NULL, coalesce(x.order_id, x.event_id)) o
                      -- An order whose first line lies before the horizon is older than every window.
                      WHERE o.order_id IS NULL OR NOT EXISTS (
                        SELECT 1 FROM purchases y
                        WHERE y.profile_key = p.profile_key AND y.source = o.source AND y.order_id = o.order_id AND y.occurred_at < $2)), '[]') AS recent
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
    const cause = causes.get(r.profile_key) ?? 'event';
    const changed = e.stage !== r.stage && e.stage !== null;
    if (changed) changes.push({ key: r.profile_key, kind: 'stage', from: r.stage, to: e.stage!, reason: reasonFor(r.stage, e.stage!, cause) });
    // Tiers start at low/silent; a change at a person's first evaluation is their first_seen.
    const tierReason = r.stage === null ? 'first_seen' : cause;
    if (e.value !== r.value_tier) changes.push({ key: r.profile_key, kind: 'value_tier', from: r.value_tier, to: e.value, reason: tierReason });
    if (e.social !== r.social_tier) changes.push({ key: r.profile_key, kind: 'social_tier', from: r.social_tier, to: e.social, reason: tierReason });
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
  if (changes.length > 0) await recordTransitions(client, changes, nowIso);
  return changes;
}

/**
 * Stores changes in lifecycle_transitions and writes their messages to the outbox in the same
 * transaction (published iff recorded). The message is version 2 of profile.lifecycle.v1
 * (`lifecycleMessageSchema` in packages/events): it names the person by profile key, userId (only
 * for a known user) and every merged anonymousId, read from identities as this transaction sees them.
 */
async function recordTransitions(client: PoolClient, changes: readonly Transition[], nowIso: string): Promise<void> {
  await client.query(
    `WITH t AS (
       INSERT INTO lifecycle_transitions (profile_key, kind, from_stage, to_stage, at, reason)
       SELECT k, kd, f, s, $6, r FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS x(k, kd, f, s, r, n)
       ORDER BY n
       RETURNING id, profile_key, kind, from_stage, to_stage, at, reason
     )
     INSERT INTO lifecycle_outbox (profile_key, payload)
     SELECT t.profile_key,
            jsonb_build_object('v', 2, 'kind', t.kind, 'id', t.profile_key,
              'anonymousIds', to_jsonb(array(SELECT i.id FROM identities i WHERE i.profile_key = t.profile_key AND i.kind = 'anonymous' ORDER BY i.id)),
              'from', t.from_stage, 'to', t.to_stage, 'at', to_char(t.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
              'reason', t.reason, 'transitionId', t.id::text)
            || CASE WHEN (SELECT kind FROM identities i WHERE i.id = t.profile_key) = 'user' THEN jsonb_build_object('userId', t.profile_key) ELSE '{}' END
     FROM t ORDER BY t.id`,
    [changes.map((c) => c.key), changes.map((c) => c.kind), changes.map((c) => c.from), changes.map((c) => c.to), changes.map((c) => c.reason), nowIso],
  );
}
