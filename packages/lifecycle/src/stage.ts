export const STAGES = ['potential', 'new', 'active', 'loyal', 'at_risk', 'churned'] as const;
export type Stage = (typeof STAGES)[number];

/** Day counts of SPEC §4.3; all configurable. */
export type LifecycleRules = {
  churnedAfterDays: number;
  atRiskAfterDays: number;
  loyalPurchases: number;
  loyalWindowDays: number;
  newWindowDays: number;
};

export const DEFAULT_RULES: LifecycleRules = {
  churnedAfterDays: 90,
  atRiskAfterDays: 30,
  loyalPurchases: 3,
  loyalWindowDays: 90,
  newWindowDays: 30,
};

/**
 * What the stage depends on: the last activity, the first purchase ever, and the purchase times
 * (at least those inside the loyal window; older ones do not matter).
 */
export type LifecycleFacts = { lastActiveAtMs: number; firstPurchaseAtMs: number | null; purchaseTimesMs: readonly number[] };

const DAY_MS = 86_400_000;

/**
 * SPEC §4.3, evaluated top to bottom; the first rule that holds is the stage.
 * "More than N days ago" is strict: at exactly 30 days a person is still active.
 */
export function stageAt(facts: LifecycleFacts, nowMs: number, rules: LifecycleRules = DEFAULT_RULES): Stage {
  const idle = nowMs - facts.lastActiveAtMs;
  if (idle > rules.churnedAfterDays * DAY_MS) return 'churned';
  if (idle > rules.atRiskAfterDays * DAY_MS) return 'at_risk';
  const loyalSince = nowMs - rules.loyalWindowDays * DAY_MS;
  const recent = facts.purchaseTimesMs.filter((t) => t >= loyalSince && t <= nowMs).length;
  if (recent >= rules.loyalPurchases) return 'loyal';
  const first = facts.firstPurchaseAtMs ?? undefined;
  if (first !== undefined && first >= nowMs - rules.newWindowDays * DAY_MS) return 'new';
  if (first !== undefined) return 'active';
  return 'potential';
}

/** A return from at_risk or churned to any other stage is a reactivation. */
export function isReactivation(from: Stage | null, to: Stage): boolean {
  return (from === 'at_risk' || from === 'churned') && to !== 'at_risk' && to !== 'churned';
}
