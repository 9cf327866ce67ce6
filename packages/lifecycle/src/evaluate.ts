import { DAY_MS as SHARED_DAY_MS, DEFAULT_RULES, type LifecycleRules } from './rules';

/**
 * The one DAY_MS, read once: under tsx (how the services run) each read of an imported binding calls
 * a getter, three for this one (rules.ts re-exports it from @pstream/events), and the windows below read
 * it for every time at every candidate instant — it was two thirds of `nextReviewAt`'s CPU
 * (BENCHMARKS.md "The apply's node side").
 */
const DAY_MS = SHARED_DAY_MS;

export const STAGES = ['potential', 'new', 'active', 'loyal', 'at_risk', 'churned'] as const;
export type Stage = (typeof STAGES)[number];
export const VALUE_TIERS = ['high', 'medium', 'low'] as const;
export type ValueTier = (typeof VALUE_TIERS)[number];
export const SOCIAL_TIERS = ['active', 'potential', 'silent'] as const;
export type SocialTier = (typeof SOCIAL_TIERS)[number];

/**
 * What stage and tiers depend on. `purchases` must hold at least those within
 * `purchaseHorizonDays(rules)` of now, `socialTimesMs` at least the `socialActiveCount` most
 * recent likes/comments/shares/favorites; older entries are allowed and ignored.
 * `amount` is in the base currency (0 for a purchase whose currency could not be converted).
 * A purchase here is an order (§4.2: line items sharing an orderId are one, at their first
 * line's time and worth their sum); the store does the grouping.
 */
export type LifecycleFacts = {
  /** Max event time; null while the person has no event (only traits from identify). */
  lastActiveAtMs: number | null;
  firstPurchaseAtMs: number | null;
  purchases: readonly { atMs: number; amount: number }[];
  socialTimesMs: readonly number[];
};

export type Evaluation = { stage: Stage | null; value: ValueTier; social: SocialTier };

/*
 * Window conventions (documented in packages/lifecycle/README.md):
 * - "more than N days ago" is strict: idle exactly N days is not yet past the threshold;
 * - "in the last D days" is inclusive: a time exactly D days ago is still inside;
 * - event times ahead of now (ingest allows 24 h of clock skew) count as inside every window.
 */
const inWindow = (atMs: number, nowMs: number, days: number) => atMs >= nowMs - days * DAY_MS;

/** docs/model.md §4.3, evaluated top to bottom; the first rule that holds is the stage. */
export function stageAt(facts: LifecycleFacts, nowMs: number, rules: LifecycleRules = DEFAULT_RULES): Stage | null {
  if (facts.lastActiveAtMs === null) return null;
  const idle = nowMs - facts.lastActiveAtMs;
  if (idle > rules.churnedAfterDays * DAY_MS) return 'churned';
  if (idle > rules.atRiskAfterDays * DAY_MS) return 'at_risk';
  let recent = 0;
  for (const p of facts.purchases) if (inWindow(p.atMs, nowMs, rules.loyalWindowDays)) recent += 1;
  if (recent >= rules.loyalPurchases) return 'loyal';
  if (facts.firstPurchaseAtMs !== null && inWindow(facts.firstPurchaseAtMs, nowMs, rules.newWindowDays)) return 'new';
  if (facts.firstPurchaseAtMs !== null) return 'active';
  return 'potential';
}

/** Value tier: purchases and spend in the value window. */
export function valueTierAt(facts: LifecycleFacts, nowMs: number, rules: LifecycleRules = DEFAULT_RULES): ValueTier {
  let n = 0;
  let total = 0;
  for (const p of facts.purchases) {
    if (!inWindow(p.atMs, nowMs, rules.valueWindowDays)) continue;
    n += 1;
    total += p.amount;
  }
  if (n >= rules.valueHighPurchases || total >= rules.valueHighMonetary) return 'high';
  if (n >= rules.valueMediumPurchases) return 'medium';
  return 'low';
}

/** Social tier: likes, comments, shares and favorites in the two windows. */
export function socialTierAt(facts: LifecycleFacts, nowMs: number, rules: LifecycleRules = DEFAULT_RULES): SocialTier {
  let active = 0;
  let potential = false;
  for (const t of facts.socialTimesMs) {
    if (inWindow(t, nowMs, rules.socialActiveDays)) active += 1;
    if (inWindow(t, nowMs, rules.socialPotentialDays)) potential = true;
  }
  if (active >= rules.socialActiveCount) return 'active';
  return potential ? 'potential' : 'silent';
}

export function evaluate(facts: LifecycleFacts, nowMs: number, rules: LifecycleRules = DEFAULT_RULES): Evaluation {
  return {
    stage: stageAt(facts, nowMs, rules),
    value: valueTierAt(facts, nowMs, rules),
    social: socialTierAt(facts, nowMs, rules),
  };
}

/** Whether stage or a tier at `atMs` differs from `current` (`evaluate` without its object). */
const differs = (current: Evaluation, facts: LifecycleFacts, atMs: number, rules: LifecycleRules) =>
  stageAt(facts, atMs, rules) !== current.stage ||
  valueTierAt(facts, atMs, rules) !== current.value ||
  socialTierAt(facts, atMs, rules) !== current.social;

/** Leaving "in the last D days" happens 1 ms after exactly D days; crossing "more than N days" too. */
const after = (atMs: number, days: number) => atMs + days * DAY_MS + 1;

/**
 * The first instant after `nowMs` at which the stage or a tier changes if no new event arrives,
 * or null if none ever will (e.g. churned, low and silent). Stage and tiers are constant between
 * the instants where an idle threshold is crossed or a time leaves a window, so it is enough to
 * test those candidates in order. The sweep reviews a person at this instant, so its cost follows
 * the number of people whose stage or tier changes.
 */
export function nextReviewAt(
  facts: LifecycleFacts,
  nowMs: number,
  rules: LifecycleRules = DEFAULT_RULES,
): number | null {
  const candidates: number[] = [];
  if (facts.lastActiveAtMs !== null) {
    candidates.push(after(facts.lastActiveAtMs, rules.atRiskAfterDays));
    candidates.push(after(facts.lastActiveAtMs, rules.churnedAfterDays));
  }
  if (facts.firstPurchaseAtMs !== null) candidates.push(after(facts.firstPurchaseAtMs, rules.newWindowDays));
  for (const p of facts.purchases) {
    candidates.push(after(p.atMs, rules.loyalWindowDays));
    candidates.push(after(p.atMs, rules.valueWindowDays));
  }
  for (const t of facts.socialTimesMs) {
    candidates.push(after(t, rules.socialActiveDays));
    candidates.push(after(t, rules.socialPotentialDays));
  }
  const current = evaluate(facts, nowMs, rules);
  // The segmenter asks this for every person a chunk names (lifecycle.ts evaluatePeople), so the
  // candidates are sorted as numbers in a typed array (no comparator calls) and an instant that
  // repeats is skipped where it repeats (no Set); the evaluations allocate nothing.
  let n = 0;
  for (const c of candidates) if (c > nowMs) n += 1;
  const future = new Float64Array(n);
  n = 0;
  for (const c of candidates) if (c > nowMs) future[n++] = c;
  future.sort();
  for (let i = 0; i < future.length; i++) {
    const c = future[i]!;
    if (i > 0 && c === future[i - 1]) continue;
    if (differs(current, facts, c, rules)) return c;
  }
  return null;
}

/** A return from at_risk or churned to any other stage is a reactivation. */
export function isReactivation(from: Stage | null, to: Stage | null): boolean {
  return (from === 'at_risk' || from === 'churned') && to !== null && to !== 'at_risk' && to !== 'churned';
}
