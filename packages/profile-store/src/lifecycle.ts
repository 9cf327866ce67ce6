import {
  DAY_MS,
  evaluate,
  isReactivation,
  MAX_SOCIAL_ACTIVE_COUNT,
  nextReviewAt,
  purchaseHorizonDays,
  type LifecycleRules,
  type Stage,
} from '@pstream/lifecycle';
import type { TransitionKind } from '@pstream/events';
import type { PoolClient } from '@pstream/platform';
import { pgArray } from './pg-array';

/** Why a stage was (re-)evaluated: new events, a merge, or time passing (the sweep). */
export type Cause = 'event' | 'merge' | 'time';

/** What changed: the stage, or one of the two tiers (docs/model.md §4.3); the list is the event contract's. */
export type { TransitionKind };

export type Transition = { key: string; kind: TransitionKind; from: string | null; to: string; reason: string };

/** The reason recorded with a change; a return from at_risk/churned is always a reactivation. */
export function reasonFor(from: Stage | null, to: Stage, cause: Cause): string {
  if (from === null) return 'first_seen';
  if (isReactivation(from, to)) return 'reactivation';
  return cause;
}

/**
 * What a chunk's new events add to a person's row (fold.ts, facts.ts): event times, the newest
 * social interactions, and the purchase totals of the purchases inserted now.
 */
export type FactGain = {
  firstSeen: string;
  lastActive: string;
  /** Newest first, at most MAX_SOCIAL_ACTIVE_COUNT. */
  social: string[];
  purchases?: { n: number; total: string; unconverted: number; first: Date; last: Date };
};

type PersonRow = {
  k: string;
  exists: boolean;
  stage: Stage | null;
  value_tier: string | null;
  social_tier: string | null;
  last_active_at: Date | null;
  first_purchase_at: Date | null;
  recent_social: Date[] | null;
};

const minMs = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.min(a, b));
const maxMs = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.max(a, b));

/**
 * Re-evaluates stage and tiers of `causes`' people at `nowMs` (wall clock, never event time, so
 * a late event cannot move anyone backwards), stores them with the next review instant, and
 * records every change of stage or tier in lifecycle_transitions and the outbox, in the caller's
 * transaction. Returns the changes.
 *
 * With `gains` (the apply path) the person's row is written ONCE: the facts the chunk adds and the
 * evaluation go into one upsert. The row is read and locked first, the evaluation sees the facts
 * as they will be (the same least/greatest/sum/newest-16 rules the upsert applies), so the result
 * equals writing the facts and then evaluating them. A person with a gain and no row yet is
 * inserted; a person with neither (a merge of ids without events) is left alone.
 */
export async function evaluatePeople(
  client: PoolClient,
  causes: ReadonlyMap<string, Cause>,
  nowMs: number,
  rules: LifecycleRules,
  gains: ReadonlyMap<string, FactGain> = new Map(),
): Promise<Transition[]> {
  if (causes.size === 0) return [];
  const horizon = new Date(nowMs - purchaseHorizonDays(rules) * DAY_MS).toISOString();
  const keys = [...causes.keys()];
  const { rows } = await client.query<PersonRow>(
    `WITH p AS (
       SELECT profile_key, stage, value_tier, social_tier, last_active_at, first_purchase_at, recent_social
       FROM people WHERE profile_key = ANY($1::text[]) ORDER BY profile_key FOR UPDATE
     )
     SELECT k.k, p.profile_key IS NOT NULL AS exists, p.stage, p.value_tier, p.social_tier, p.last_active_at, p.first_purchase_at, p.recent_social
     FROM unnest($1::text[]) AS k(k) LEFT JOIN p ON p.profile_key = k.k`,
    [keys],
  );
  const recent = await recentPurchases(client, keys, horizon);
  const out = {
    key: [] as string[],
    stage: [] as (Stage | null)[],
    changed: [] as boolean[],
    value: [] as string[],
    social: [] as string[],
    next: [] as (string | null)[],
    first: [] as (string | null)[],
    last: [] as (string | null)[],
    recent: [] as (string | null)[],
    pn: [] as number[],
    pt: [] as string[],
    pu: [] as number[],
    pf: [] as (Date | null)[],
    pl: [] as (Date | null)[],
  };
  const changes: Transition[] = [];
  for (const r of rows) {
    const gain = gains.get(r.k);
    if (!r.exists && !gain) continue;
    // A row the upsert inserts starts at the table's defaults (no stage, low, silent).
    const was = { stage: r.stage, value: r.value_tier ?? 'low', social: r.social_tier ?? 'silent' };
    let socialMs = (r.recent_social ?? []).map((d) => d.getTime());
    if (gain && gain.social.length > 0) {
      socialMs = [...socialMs, ...gain.social.map((t) => Date.parse(t))]
        .sort((a, b) => b - a)
        .slice(0, MAX_SOCIAL_ACTIVE_COUNT);
    }
    const facts = {
      lastActiveAtMs: maxMs(r.last_active_at?.getTime() ?? null, gain ? Date.parse(gain.lastActive) : null),
      firstPurchaseAtMs: minMs(r.first_purchase_at?.getTime() ?? null, gain?.purchases?.first.getTime() ?? null),
      purchases: recent.get(r.k) ?? [],
      socialTimesMs: socialMs,
    };
    const e = evaluate(facts, nowMs, rules);
    const next = nextReviewAt(facts, nowMs, rules);
    const cause = causes.get(r.k) ?? 'event';
    const changed = e.stage !== was.stage && e.stage !== null;
    if (changed)
      changes.push({
        key: r.k,
        kind: 'stage',
        from: was.stage,
        to: e.stage!,
        reason: reasonFor(was.stage, e.stage!, cause),
      });
    // Tiers start at low/silent; a change at a person's first evaluation is their first_seen.
    const tierReason = was.stage === null ? 'first_seen' : cause;
    if (e.value !== was.value)
      changes.push({ key: r.k, kind: 'value_tier', from: was.value, to: e.value, reason: tierReason });
    if (e.social !== was.social)
      changes.push({ key: r.k, kind: 'social_tier', from: was.social, to: e.social, reason: tierReason });
    out.key.push(r.k);
    out.stage.push(e.stage);
    out.changed.push(changed);
    out.value.push(e.value);
    out.social.push(e.social);
    out.next.push(next === null ? null : new Date(next).toISOString());
    out.first.push(gain?.firstSeen ?? null);
    out.last.push(gain?.lastActive ?? null);
    // Only a chunk with social events changes the list; NULL keeps the stored one (the row is locked,
    // so it is the list read above), and no list is printed here and parsed again by Postgres.
    out.recent.push(
      gain && gain.social.length > 0 ? toPgArray(socialMs.map((ms) => new Date(ms).toISOString())) : null,
    );
    out.pn.push(gain?.purchases?.n ?? 0);
    out.pt.push(gain?.purchases?.total ?? '0');
    out.pu.push(gain?.purchases?.unconverted ?? 0);
    out.pf.push(gain?.purchases?.first ?? null);
    out.pl.push(gain?.purchases?.last ?? null);
  }
  const nowIso = new Date(nowMs).toISOString();
  // Rows without a gain (sweep, merges) carry NULL event times: least/greatest keep the stored
  // value, the sums add 0, and recent_social and updated_at stay as they are (recent_social also for a gain without social events).
  // next_review_at: the sweep and merges store the exact instant; new events only ever move it
  // EARLIER (least). Most events move it later (the person's at_risk date), and an indexed column
  // that changes makes the update non-HOT (migration 010); an instant that stays earlier than the
  // exact one only makes the sweep review the person once early, which stores the exact one. So
  // the stored instant is never later than the exact one: no time-driven change is missed.
  // One statement writes the people rows and, when there are any, the changes and their outbox
  // messages (a data-modifying CTE each): one round trip.
  const upsert = `INSERT INTO people AS p (profile_key, first_seen_at, last_active_at, recent_social, purchases, monetary_total, unconverted_purchases,
                              first_purchase_at, last_purchase_at, stage, stage_since, value_tier, social_tier, next_review_at, stage_evaluated_at)
     SELECT k, f, l, coalesce(rs::timestamptz[], '{}'), pn, pt, pu, pf, pl, stage, CASE WHEN changed THEN $15::timestamptz END, value, social, next, $15
     FROM unnest($1::text[], $2::text[], $3::boolean[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[], $8::timestamptz[],
                 $9::text[], $10::int[], $11::numeric[], $12::int[], $13::timestamptz[], $14::timestamptz[])
          AS t(k, stage, changed, value, social, next, f, l, rs, pn, pt, pu, pf, pl)
     ON CONFLICT (profile_key) DO UPDATE SET
       first_seen_at = least(p.first_seen_at, excluded.first_seen_at),
       last_active_at = greatest(p.last_active_at, excluded.last_active_at),
       recent_social = CASE WHEN excluded.last_active_at IS NULL OR cardinality(excluded.recent_social) = 0 THEN p.recent_social
                            ELSE excluded.recent_social END,
       purchases = p.purchases + excluded.purchases,
       monetary_total = p.monetary_total + excluded.monetary_total,
       unconverted_purchases = p.unconverted_purchases + excluded.unconverted_purchases,
       first_purchase_at = least(p.first_purchase_at, excluded.first_purchase_at),
       last_purchase_at = greatest(p.last_purchase_at, excluded.last_purchase_at),
       stage = excluded.stage, stage_since = coalesce(excluded.stage_since, p.stage_since),
       value_tier = excluded.value_tier, social_tier = excluded.social_tier,
       next_review_at = CASE WHEN excluded.last_active_at IS NULL THEN excluded.next_review_at
                             ELSE least(p.next_review_at, excluded.next_review_at) END,
       stage_evaluated_at = excluded.stage_evaluated_at,
       updated_at = CASE WHEN excluded.last_active_at IS NULL THEN p.updated_at ELSE now() END`;
  const written = [
    pgArray(out.key),
    pgArray(out.stage),
    pgArray(out.changed),
    pgArray(out.value),
    pgArray(out.social),
    pgArray(out.next),
    pgArray(out.first),
    pgArray(out.last),
    pgArray(out.recent),
    pgArray(out.pn),
    pgArray(out.pt),
    pgArray(out.pu),
    pgArray(out.pf),
    pgArray(out.pl),
    nowIso,
  ];
  if (changes.length === 0) await client.query(upsert, written);
  else
    await client.query(`WITH written AS (${upsert}), ${transitionsSql(written.length + 1, '$15')}`, [
      ...written,
      ...transitionParams(changes),
    ]);
  return changes;
}

/**
 * The purchases of `keys` inside the longest window (from `horizon`), one entry per order (§4.2,
 * §4.3): at its first line, worth all its lines; an order whose first line lies before the horizon
 * is older than every window. One grouped statement for all the chunk's people, not a subquery per
 * person (a sort and a grouping each, buyer or not).
 */
async function recentPurchases(
  client: PoolClient,
  keys: readonly string[],
  horizon: string,
): Promise<Map<string, { atMs: number; amount: number }[]>> {
  const { rows } = await client.query<{ k: string; at_ms: string; amount: string }>(
    `SELECT o.profile_key AS k, o.at_ms, o.amount FROM (
       SELECT x.profile_key, x.source, min(x.order_id) AS order_id, extract(epoch FROM min(x.occurred_at)) * 1000 AS at_ms,
              coalesce(sum(x.base_amount), 0) AS amount
       FROM purchases x WHERE x.profile_key = ANY($1::text[]) AND x.occurred_at >= $2
       GROUP BY x.profile_key, x.source, x.order_id IS NULL, coalesce(x.order_id, x.event_id)) o
     WHERE o.order_id IS NULL OR NOT EXISTS (
       SELECT 1 FROM purchases y
       WHERE y.profile_key = o.profile_key AND y.source = o.source AND y.order_id = o.order_id AND y.occurred_at < $2)`,
    [keys, horizon],
  );
  const out = new Map<string, { atMs: number; amount: number }[]>();
  for (const r of rows) {
    const list = out.get(r.k) ?? [];
    list.push({ atMs: Number(r.at_ms), amount: Number(r.amount) });
    out.set(r.k, list);
  }
  return out;
}

/** A Postgres array literal of ISO timestamps (a text[] element per person, cast back in SQL). */
function toPgArray(isos: readonly string[]): string {
  return `{${isos.join(',')}}`;
}

/**
 * The statement tail that stores changes in lifecycle_transitions and writes their messages to the
 * outbox in the same transaction (published iff recorded), its parameters from `$first` (see
 * `transitionParams`) and the instant of the changes in `at`. The message is version 2 of profile.lifecycle.v1 (`lifecycleMessageSchema`
 * in packages/events): it names the person by profile key, userId (only for a known user) and every
 * merged anonymousId, read from identities as this transaction sees them.
 */
function transitionsSql(first: number, at: string): string {
  const [k, kd, f, s, r] = [0, 1, 2, 3, 4].map((i) => `$${first + i}`);
  return `t AS (
       INSERT INTO lifecycle_transitions (profile_key, kind, from_stage, to_stage, at, reason)
       SELECT k, kd, f, s, ${at}::timestamptz, r FROM unnest(${k}::text[], ${kd}::text[], ${f}::text[], ${s}::text[], ${r}::text[]) WITH ORDINALITY AS x(k, kd, f, s, r, n)
       ORDER BY n
       RETURNING id, profile_key, kind, from_stage, to_stage, at, reason
     ), anon AS (
       -- Once per person with anonymous ids, not once per change (a sorted subquery per row).
       SELECT i.profile_key, array_agg(i.id ORDER BY i.id) AS ids FROM identities i
       WHERE i.profile_key = ANY(${k}::text[]) AND i.kind = 'anonymous' GROUP BY i.profile_key
     )
     INSERT INTO lifecycle_outbox (profile_key, payload)
     SELECT t.profile_key,
            jsonb_build_object('v', 2, 'kind', t.kind, 'id', t.profile_key,
              'anonymousIds', to_jsonb(coalesce(a.ids, '{}')),
              'from', t.from_stage, 'to', t.to_stage, 'at', to_char(t.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
              'reason', t.reason, 'transitionId', t.id::text)
            || CASE WHEN u.kind = 'user' THEN jsonb_build_object('userId', t.profile_key) ELSE '{}' END
     FROM t LEFT JOIN anon a ON a.profile_key = t.profile_key LEFT JOIN identities u ON u.id = t.profile_key
     ORDER BY t.id`;
}

/** The parameters of `transitionsSql`, in its order. */
function transitionParams(changes: readonly Transition[]): unknown[] {
  return [
    pgArray(changes.map((c) => c.key)),
    pgArray(changes.map((c) => c.kind)),
    pgArray(changes.map((c) => c.from)),
    pgArray(changes.map((c) => c.to)),
    pgArray(changes.map((c) => c.reason)),
  ];
}
