/** Thresholds of docs/model.md §4.3 (seed 004); every one is configurable, these are the defaults. */
export type LifecycleRules = {
  /** churned: last activity more than this many days ago. */
  churnedAfterDays: number;
  /** at_risk: last activity more than this many days ago (and not churned). */
  atRiskAfterDays: number;
  /** loyal: at least `loyalPurchases` purchases in the last `loyalWindowDays` days. */
  loyalPurchases: number;
  loyalWindowDays: number;
  /** new: the first purchase ever lies within the last `newWindowDays` days. */
  newWindowDays: number;
  /** value high: ≥ `valueHighPurchases` purchases or ≥ `valueHighMonetary` (base currency) in the window. */
  valueHighPurchases: number;
  valueHighMonetary: number;
  /** value medium: ≥ `valueMediumPurchases` purchases in the window. */
  valueMediumPurchases: number;
  valueWindowDays: number;
  /** social active: ≥ `socialActiveCount` likes/comments/shares/favorites in `socialActiveDays`. */
  socialActiveCount: number;
  socialActiveDays: number;
  /** social potential: at least one in `socialPotentialDays`. */
  socialPotentialDays: number;
};

export const DEFAULT_RULES: LifecycleRules = {
  churnedAfterDays: 90,
  atRiskAfterDays: 30,
  loyalPurchases: 3,
  loyalWindowDays: 90,
  newWindowDays: 30,
  valueHighPurchases: 5,
  valueHighMonetary: 2000,
  valueMediumPurchases: 1,
  valueWindowDays: 365,
  socialActiveCount: 5,
  socialActiveDays: 30,
  socialPotentialDays: 90,
};

/**
 * The most recent social interactions a store must keep per person for the social tier to be
 * exact: "≥ N in D days" holds iff the N-th most recent one lies within D days.
 */
export const MAX_SOCIAL_ACTIVE_COUNT = 16;

/** Days in the rules become milliseconds by the one DAY_MS of the event contract. */
export { DAY_MS } from '@pstream/events';

/** How far back purchases matter to any rule (older ones never change a stage or tier). */
export function purchaseHorizonDays(rules: LifecycleRules): number {
  return Math.max(rules.loyalWindowDays, rules.valueWindowDays);
}
