import { tagCountAtLeast, tagMembersAtLeast, tagScoresOf, type Keys } from '@pstream/interest-store';
import type { AudienceStore, FactLeaf } from '@pstream/profile-store';
import { decayedScore, tagValue, type DecayParams } from '@pstream/scoring';
import type { Redis } from '@pstream/platform';
import { explainRule, ruleLeaves, type ExplainedNode, type LeafOutcome } from './explain';
import type { InterestLeaf, Rule } from './rule';
import { dropsBelowAt, storedThreshold } from './threshold';
import { nextChanges, timeLeaves, type HoldsUntil } from './watch';

/** Where leaves are answered: interest leaves from Redis's per-tag index, the rest from Postgres. */
export type InterestSource = {
  /** Everyone whose value in the tag is at least minValue at nowMs (optionally only among `within`). */
  holders(leaf: InterestLeaf, nowMs: number, within?: readonly string[]): Promise<string[]>;
  /** How many hold it (exact, O(log n)). */
  count(leaf: InterestLeaf, nowMs: number): Promise<number>;
  /** For those of `people` who hold it at nowMs: the instant their value decays below minValue. */
  holdsUntil(leaf: InterestLeaf, nowMs: number, people: readonly string[]): Promise<Map<string, number>>;
  /**
   * For one person: whether the leaf holds at nowMs (the same bound as `holders`) and their value in the tag (0 when
   * absent).
   */
  observe(leaf: InterestLeaf, nowMs: number, person: string): Promise<{ holds: boolean; observed: number }>;
  /**
   * What checking one person (`holders` within) costs, counted in entries of the leaf's index read whole
   * (`holders` without within reads count entries); undefined: 1.
   */
  readonly checkCost?: number;
};
export type FactSource = Pick<
  AudienceStore,
  'leafKeys' | 'holdingAll' | 'estimate' | 'everyone' | 'personalizationAllowed' | 'didHoldsUntil' | 'observe'
>;

/** Why an opted-out person's interest leaves do not hold, and why they are in no audience (docs/api.md §5.7). */
export const OPTED_OUT = 'opted out of personalization: interests are not used, and the person is in no audience';
export type AudienceSources = { interests: InterestSource; facts: FactSource };

/** The interest leaves over interest-store's per-tag index: a range query above a bound that depends only on now. */
export function createInterestSource(redis: Redis, k: Keys, decay: DecayParams, valueScale: number): InterestSource {
  const bound = (leaf: InterestLeaf, nowMs: number) => storedThreshold(leaf.minValue, nowMs, decay, valueScale);
  return {
    async holders(leaf, nowMs, within) {
      const min = bound(leaf, nowMs);
      if (within === undefined) return tagMembersAtLeast(redis, k, leaf.tag, min);
      const scores = await tagScoresOf(redis, k, leaf.tag, within);
      return within.filter((_, i) => scores[i] !== null && scores[i]! >= min);
    },
    count: (leaf, nowMs) => tagCountAtLeast(redis, k, leaf.tag, bound(leaf, nowMs)),
    // a check reads the person's state, then the bucket of the score it carries (RANGE_SCORES): at 1 M people
    // 3 333 people checked took 100-170 ms where a tag's 25 000 entries read whole took 10-60 ms
    checkCost: k.tagLayout === 'range' ? RANGE_CHECK_COST : undefined,
    async holdsUntil(leaf, nowMs, people) {
      const min = bound(leaf, nowMs);
      const scores = await tagScoresOf(redis, k, leaf.tag, people);
      const out = new Map<string, number>();
      people.forEach((p, i) => {
        const s = scores[i];
        if (s !== null && s !== undefined && s >= min) out.set(p, dropsBelowAt(s, leaf.minValue, decay, valueScale));
      });
      return out;
    },
    async observe(leaf, nowMs, person) {
      const [stored] = await tagScoresOf(redis, k, leaf.tag, [person]);
      if (stored === null || stored === undefined) return { holds: false, observed: 0 };
      return {
        holds: stored >= bound(leaf, nowMs),
        observed: tagValue(decayedScore(stored, nowMs, decay), valueScale),
      };
    },
  };
}

const isNot = (r: Rule): r is { not: Rule } => 'not' in r;
const isFact = (r: Rule): boolean => !('interest' in r || 'all' in r || 'any' in r || 'not' in r);
/** A fact leaf or the negation of one, as a check Postgres can answer per person; else undefined. */
const factCheck = (r: Rule): { leaf: FactLeaf; negated: boolean } | undefined =>
  isFact(r)
    ? { leaf: r as FactLeaf, negated: false }
    : isNot(r) && isFact(r.not)
      ? { leaf: r.not as FactLeaf, negated: true }
      : undefined;

/**
 * A child of `all` is read whole from its index and intersected in memory when it reads at most
 * this many times as many rows as there are people left; otherwise it is checked person by person
 * (a key lookup each). Measured at 1 M people: a key lookup ≈ 24 µs, a row of a bitmap heap scan
 * ≈ 3.5 µs — about 7×; 4 leaves a margin for index rows that also need the heap.
 */
const SCAN_OVER_PROBE = 4;

/**
 * A check of one person against an interest leaf in score-range buckets (a GET of their state and a look in
 * one bucket), in entries read whole: × SCAN_OVER_PROBE, a leaf is read whole up to 24 entries a person left
 * (measured at 1 M people, BENCHMARKS.md "sim1m": 30-50 µs a person checked, 0.4-2.4 µs an entry read whole).
 */
const RANGE_CHECK_COST = 6;

/**
 * The most entries of an interest leaf read whole among the people left (one RANGE_MEMBERS call: ≈ 1-2 µs an
 * entry, so ≤ ≈ 100 ms of Redis); a bigger leaf is checked person by person, in calls of their own.
 */
const INTEREST_WHOLE_READ_MAX = 50_000;

/**
 * Evaluates a rule at one instant. `all` starts from its most selective child (Redis's exact
 * count for interest leaves, Postgres's plan estimate for fact leaves) and evaluates every other
 * child only among the people left, cheapest first; `not` subtracts within what is left; `any`
 * is a union. Only a rule that is nothing but negations reads the list of everyone.
 * The result passes the one consent filter (`personalizationAllowed`) and is sorted.
 */
export function createAudienceEngine(sources: AudienceSources) {
  const { interests, facts } = sources;

  async function estimate(rule: Rule, nowMs: number): Promise<number> {
    if ('interest' in rule) return interests.count(rule.interest, nowMs);
    if ('all' in rule) {
      const positive = rule.all.filter((r) => !isNot(r));
      if (positive.length === 0) return Infinity;
      return Math.min(...(await Promise.all(positive.map((r) => estimate(r, nowMs)))));
    }
    if ('any' in rule) return (await Promise.all(rule.any.map((r) => estimate(r, nowMs)))).reduce((a, b) => a + b, 0);
    if (isNot(rule)) return Infinity;
    return facts.estimate(rule as FactLeaf, nowMs);
  }

  async function evaluate(rule: Rule, nowMs: number, within?: readonly string[]): Promise<string[]> {
    if (within !== undefined && within.length === 0) return [];
    if ('interest' in rule) return interests.holders(rule.interest, nowMs, within);
    if ('any' in rule) {
      const union = new Set<string>();
      for (const r of rule.any) for (const k of await evaluate(r, nowMs, within)) union.add(k);
      return [...union];
    }
    if (isNot(rule)) {
      const base = within ?? (await facts.everyone());
      const out = new Set(await evaluate(rule.not, nowMs, base));
      return base.filter((k) => !out.has(k));
    }
    if ('all' in rule) {
      const sized = await Promise.all(rule.all.map(async (r) => ({ r, n: await estimate(r, nowMs) })));
      // positives by size, then negations: every step narrows what the next one reads
      sized.sort((a, b) => Number(isNot(a.r)) - Number(isNot(b.r)) || a.n - b.n);
      let current = within;
      // fact leaves to check person by person: kept for last and checked together, one statement
      const deferred: { leaf: FactLeaf; negated: boolean }[] = [];
      for (const { r, n } of sized) {
        const fact = factCheck(r);
        // an interest leaf's whole read is one Redis script call, holding every other client while it runs: bounded
        const interest = 'interest' in r;
        const perCheck = interest ? (interests.checkCost ?? 1) : 1;
        const wholeBounded = !interest || n <= INTEREST_WHOLE_READ_MAX;
        if (current !== undefined && !isNot(r) && wholeBounded && n <= SCAN_OVER_PROBE * current.length * perCheck) {
          // reading the leaf's own index whole is cheaper than probing it once per person left
          const hits = new Set(await evaluate(r, nowMs));
          current = current.filter((k) => hits.has(k));
        } else if (current !== undefined && fact) deferred.push(fact);
        else current = await evaluate(r, nowMs, current);
        if (current.length === 0) return [];
      }
      if (current !== undefined && deferred.length > 0) current = await facts.holdingAll(deferred, nowMs, current);
      return current === undefined ? [] : [...current];
    }
    return facts.leafKeys(rule as FactLeaf, nowMs, within);
  }

  const holdsUntil: HoldsUntil = (t, nowMs, people) =>
    t.kind === 'interest'
      ? interests.holdsUntil(t.leaf, nowMs, people)
      : facts.didHoldsUntil({ did: t.leaf }, nowMs, people);

  /** The profile keys of `keys` the rule holds for, consent applied, sorted. */
  const allowed = async (keys: readonly string[]) => (await facts.personalizationAllowed([...new Set(keys)])).sort();

  return {
    estimate,
    /** The profile keys the rule holds for at `nowMs`, consent applied, sorted. */
    members: async (rule: Rule, nowMs: number): Promise<string[]> => allowed(await evaluate(rule, nowMs)),

    /**
     * The members at `nowMs` and, for everyone whose membership can change by time alone, the
     * next instant it can (watch.ts): the members, and the holders of the rule's negated
     * interest/did leaves (who may enter when those stop holding).
     */
    async snapshot(rule: Rule, nowMs: number): Promise<{ members: string[]; watch: Map<string, number> }> {
      const members = await allowed(await evaluate(rule, nowMs));
      const people = new Set(members);
      for (const t of timeLeaves(rule)) {
        if (t.positive) continue;
        for (const p of await evaluate(t.kind === 'interest' ? { interest: t.leaf } : { did: t.leaf }, nowMs))
          people.add(p);
      }
      return { members, watch: await nextChanges(rule, nowMs, [...people], new Set(members), holdsUntil) };
    },

    /**
     * Why `key` (a profile key) is or is not a member at `nowMs` (docs/api.md §5.4 "Explain"): every
     * leaf answered for them by the same sources and bounds as `members`, the nodes above by all /
     * any / not, and the one consent filter: an opted-out person's interest leaves do not hold
     * (with `OPTED_OUT` as the reason) and they match nothing.
     */
    async explain(
      rule: Rule,
      nowMs: number,
      key: string,
    ): Promise<{ matches: boolean; explanation: ExplainedNode; reason?: string }> {
      const allowed = (await facts.personalizationAllowed([key])).length === 1;
      const leaves = ruleLeaves(rule);
      const factLeaves = leaves.flatMap((l) => (l.kind === 'fact' ? [l.leaf] : []));
      const [factOutcomes, interestOutcomes] = await Promise.all([
        facts.observe(factLeaves, nowMs, key),
        Promise.all(
          leaves.flatMap((l) =>
            l.kind !== 'interest'
              ? []
              : [
                  allowed
                    ? interests.observe(l.leaf, nowMs, key)
                    : Promise.resolve<LeafOutcome>({ holds: false, observed: null, reason: OPTED_OUT }),
                ],
          ),
        ),
      ]);
      let f = 0;
      let i = 0;
      const outcomes = leaves.map((l) => (l.kind === 'fact' ? factOutcomes[f++]! : interestOutcomes[i++]!));
      const explanation = explainRule(rule, outcomes);
      return { matches: allowed && explanation.holds, explanation, ...(!allowed && { reason: OPTED_OUT }) };
    },

    /** The same restricted to `people`: those of them in the audience at `nowMs`, and their next instants. */
    async among(
      rule: Rule,
      nowMs: number,
      people: readonly string[],
    ): Promise<{ members: string[]; watch: Map<string, number> }> {
      const members = await allowed(await evaluate(rule, nowMs, people));
      return { members, watch: await nextChanges(rule, nowMs, people, new Set(members), holdsUntil) };
    },
  };
}

export type AudienceEngine = ReturnType<typeof createAudienceEngine>;
