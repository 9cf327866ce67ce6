import type { DidLeaf, InterestLeaf, Rule } from './rule';

/*
 * When can a person's membership change by time alone (docs/api.md §5.4 "How saved audiences stay
 * current")? Leaf by leaf, with no new event:
 *   interest   holds → stops holding at one computable instant (its value decays below the
 *              threshold: `dropsBelowAt`); never starts holding.
 *   did        holds → stops holding at the start of a computable UTC day (the window slides past
 *              the days that made up the count); never starts holding.
 *   stage/tier change by time only through the lifecycle sweep, which lists who changed.
 *   trait, follows  never change by time.
 * A rule is monotone in its leaves: rising in those under an even number of `not`s (positive),
 * falling in the others (negative). Time only turns interest/did leaves from true to false, so a
 * member can leave by time only when a positive leaf that holds for them stops, and a non-member
 * can enter by time only when a negative leaf that holds for them stops. The next such instant
 * over those leaves is when the sweep must look again; a person with none has no instant.
 */

export type TimeLeaf =
  { kind: 'interest'; leaf: InterestLeaf; positive: boolean } | { kind: 'did'; leaf: DidLeaf; positive: boolean };

/** The interest and `did` leaves of a rule with their polarity. */
export function timeLeaves(rule: Rule, positive = true): TimeLeaf[] {
  if ('all' in rule) return rule.all.flatMap((r) => timeLeaves(r, positive));
  if ('any' in rule) return rule.any.flatMap((r) => timeLeaves(r, positive));
  if ('not' in rule) return timeLeaves(rule.not, !positive);
  if ('interest' in rule) return [{ kind: 'interest', leaf: rule.interest, positive }];
  if ('did' in rule) return [{ kind: 'did', leaf: rule.did, positive }];
  return [];
}

/** Whether the rule reads stage or tiers (which the lifecycle sweep changes by time). */
export function readsLifecycle(rule: Rule): boolean {
  if ('all' in rule) return rule.all.some(readsLifecycle);
  if ('any' in rule) return rule.any.some(readsLifecycle);
  if ('not' in rule) return readsLifecycle(rule.not);
  return 'stage' in rule || 'tier' in rule;
}

/** Until when each leaf holds, for the people given (absent: does not hold now). */
export type HoldsUntil = (t: TimeLeaf, nowMs: number, people: readonly string[]) => Promise<Map<string, number>>;

/**
 * The next instant after `nowMs` at which each of `people` may join or leave by time alone
 * (`members`: those of them in the audience now). People without one are left out.
 */
export async function nextChanges(
  rule: Rule,
  nowMs: number,
  people: readonly string[],
  members: ReadonlySet<string>,
  holdsUntil: HoldsUntil,
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const t of timeLeaves(rule)) {
    const concerned = people.filter((p) => members.has(p) === t.positive);
    if (concerned.length === 0) continue;
    for (const [p, at] of await holdsUntil(t, nowMs, concerned)) {
      if (at > nowMs && at < (out.get(p) ?? Infinity)) out.set(p, at);
    }
  }
  return out;
}
