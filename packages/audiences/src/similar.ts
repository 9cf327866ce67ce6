import { nearestInTags, readStoredInterests, strongestTags, type Keys } from '@pstream/interest-store';
import type { AudienceStore } from '@pstream/profile-store';
import { decayedScore, tagValue, type DecayParams } from '@pstream/scoring';
import type { Redis } from '@pstream/platform';

/** A §5.3 feature vector: one component per interest tag (its value at the instant) plus `$spend` and `$social`. */
export type Vector = Map<string, number>;

/**
 * The vector of docs/api.md §5.3 from what the stores hold: tag values (scale·tanh(score/scale)) decayed
 * to `nowMs`, `$spend` = 10·tanh(spend over 365 d / 1000), `$social` = 10·tanh(interactions over 30 d / 5).
 * Zero components are left out (they add nothing to a dot product or a norm).
 */
export function featureVector(
  stored: ReadonlyMap<string, number>,
  facts: { spend: number; social: number },
  nowMs: number,
  decay: DecayParams,
  valueScale: number,
): Vector {
  const v: Vector = new Map();
  for (const [tag, s] of stored) {
    const value = tagValue(decayedScore(s, nowMs, decay), valueScale);
    if (value !== 0) v.set(tag, value);
  }
  const spend = 10 * Math.tanh(facts.spend / 1000);
  const social = 10 * Math.tanh(facts.social / 5);
  if (spend !== 0) v.set('$spend', spend);
  if (social !== 0) v.set('$social', social);
  return v;
}

/** Cosine of two sparse vectors; 0 when either is all zeros. */
export function cosine(a: Vector, b: Vector): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  const [small, large] = a.size <= b.size ? [a, b] : [b, a];
  for (const [k, x] of small) {
    const y = large.get(k);
    if (y !== undefined) dot += x * y;
  }
  for (const x of a.values()) na += x * x;
  for (const x of b.values()) nb += x * x;
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

export type Similar = { id: string; similarity: number };

/** Most similar first; equal similarities by id, so answers are stable. */
export function rankSimilar(of: Vector, others: ReadonlyMap<string, Vector>, limit: number): Similar[] {
  const out: Similar[] = [];
  for (const [id, v] of others) out.push({ id, similarity: cosine(of, v) });
  out.sort(bySimilarity);
  return out.slice(0, limit);
}

function bySimilarity(a: Similar, b: Similar): number {
  return b.similarity - a.similarity || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

export type SimilarOptions = {
  decay: DecayParams;
  valueScale: number;
  /** How many of the person's strongest tags seed the candidates. */
  seedTags: number;
  /** How many holders of each seed tag are read on each side of the person's own score (ids only). */
  perTag: number;
  /** How many candidates get their full vector and the exact cosine: those in most of the seed lists. */
  exact: number;
  /**
   * How many candidates (at least `limit`), best bound first, the first Postgres read asks for; the
   * rest, when those do not settle the answer, in a second read.
   */
  factsBatch: number;
};
export const DEFAULT_SIMILAR = { seedTags: 8, perTag: 500, exact: 400, factsBatch: 64 } as const;

/**
 * Orders candidates by the summed weight of the seed lists they appear in (a list's weight is the
 * person's own value in that tag: sharing a strong tag at a near score counts most); keeps `n`.
 */
export function shortlist(
  lists: readonly (readonly string[])[],
  weights: readonly number[],
  skip: ReadonlySet<string>,
  n: number,
): string[] {
  const seen = new Map<string, number>();
  lists.forEach((list, i) => {
    for (const id of list) if (!skip.has(id)) seen.set(id, (seen.get(id) ?? 0) + weights[i]!);
  });
  return [...seen]
    .sort(([a, x], [b, y]) => y - x || (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, n)
    .map(([id]) => id);
}

/**
 * The largest cosine `me` can have with a person whose interest components are `tags` (no `$spend`,
 * `$social`), whatever their spend and social components: each is 10·tanh(·), so together they lie
 * in a disc of radius 10·√2 — with r their length, me's part of the dot product is at most s·r (s the
 * length of me's own two), and (d + s·r) / (|me|·√(|tags|² + r²)) peaks at r = s·|tags|²/d (d > 0) or
 * at the disc's edge. An upper bound of the exact cosine, never below it.
 */
export function cosineUpperBound(me: Vector, tags: Vector): number {
  let d = 0;
  let t = 0;
  let m = 0;
  for (const [key, y] of tags) {
    t += y * y;
    const x = me.get(key);
    if (x !== undefined) d += x * y;
  }
  for (const x of me.values()) m += x * x;
  if (m === 0) return 0;
  const s = Math.hypot(me.get('$spend') ?? 0, me.get('$social') ?? 0);
  const R = 10 * Math.SQRT2;
  const r = d > 0 ? Math.min((s * t) / d, R) : R;
  const denominator = Math.sqrt(m) * Math.sqrt(t + r * r);
  return denominator === 0 ? 0 : (d + s * r) / denominator;
}

/** Slack for rounding between `cosineUpperBound` and `cosine` (both in doubles; far below any gap that matters). */
const BOUND_SLACK = 1e-9;

/**
 * `rankSimilar` over the people of `interestsOnly` (their vectors without `$spend`/`$social`) whose
 * `full` vector is given, without asking `full` for everyone: candidates are asked for best bound
 * first (`cosineUpperBound`), `firstBatch` (at least `limit`) and then all the rest, and asking stops
 * once `limit` of those answered have an exact cosine above every bound left — the answer
 * `rankSimilar` of every candidate's full vector gives. `full` leaves out (undefined) the people who
 * may not be ranked.
 */
export async function rankBounded(
  me: Vector,
  interestsOnly: ReadonlyMap<string, Vector>,
  limit: number,
  firstBatch: number,
  full: (ids: string[]) => Promise<ReadonlyMap<string, Vector | undefined>>,
): Promise<Similar[]> {
  const bounded = [...interestsOnly]
    .map(([id, v]) => ({ id, upper: cosineUpperBound(me, v) }))
    .sort((a, b) => b.upper - a.upper || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const out: Similar[] = [];
  let next = 0;
  for (let batch = Math.max(firstBatch, limit); next < bounded.length; batch = bounded.length) {
    const ids = bounded.slice(next, next + batch).map((b) => b.id);
    next += ids.length;
    const vectors = await full(ids);
    for (const id of ids) {
      const v = vectors.get(id);
      if (v) out.push({ id, similarity: cosine(me, v) });
    }
    out.sort(bySimilarity);
    // the candidates left are sorted by bound: when the first one's cannot beat the `limit`-th answer, none can
    const last = out[limit - 1];
    if (last && next < bounded.length && last.similarity > bounded[next]!.upper + BOUND_SLACK) break;
  }
  return out.slice(0, limit);
}

/**
 * Similar people (§5.3) without a scan of everyone: for each of the person's strongest tags, the
 * holders whose stored score is nearest the person's own (per-tag index, ids only, `perTag` on
 * each side); candidates are shortlisted by how many of those lists they are in, weighted by the
 * person's value in the tag, and each shortlisted candidate's similarity is the exact cosine of
 * the full vectors. Excludes the person; candidates pass the one consent filter.
 *
 * Postgres is asked only for the candidates that can still make the answer: every candidate's
 * interests come from Redis first, which bound its cosine whatever its spend and social
 * (`cosineUpperBound`); candidates are read best bound first, `factsBatch` in one statement
 * (their facts and consent together, `similarityInputs`), and reading stops once `limit` allowed
 * candidates are known whose exact cosine beats every bound left. The answer is the one reading
 * every candidate would give.
 */
export function createSimilarFinder(
  redis: Redis,
  k: Keys,
  facts: Pick<AudienceStore, 'similarityFacts' | 'similarityInputs'>,
  options: SimilarOptions,
) {
  const vectors = async (people: readonly string[], nowMs: number): Promise<Map<string, Vector>> => {
    const [stored, f] = await Promise.all([
      readStoredInterests(redis, k, people),
      facts.similarityFacts(people, nowMs),
    ]);
    return new Map(
      people.map((p) => [p, featureVector(stored.get(p)!, f.get(p)!, nowMs, options.decay, options.valueScale)]),
    );
  };
  const vector = (stored: ReadonlyMap<string, number>, f: { spend: number; social: number }, nowMs: number) =>
    featureVector(stored, f, nowMs, options.decay, options.valueScale);
  const none = { spend: 0, social: 0 };
  return {
    vectors,
    async similar(
      profileKey: string,
      limit: number,
      nowMs: number,
      exclude: readonly string[] = [],
    ): Promise<Similar[]> {
      // the person's own facts beside the first Redis read: they are needed before any bound
      const [seeds, mine] = await Promise.all([
        strongestTags(redis, k, profileKey, options.seedTags),
        facts.similarityInputs([profileKey], nowMs),
      ]);
      const lists = await nearestInTags(redis, k, seeds, options.perTag);
      const weights = seeds.map((s) => tagValue(decayedScore(s.score, nowMs, options.decay), options.valueScale));
      const candidates = shortlist(lists, weights, new Set([profileKey, ...exclude]), options.exact);
      const stored = await readStoredInterests(redis, k, [profileKey, ...candidates]);
      const me = vector(stored.get(profileKey)!, mine.get(profileKey)!, nowMs);
      const interestsOnly = new Map(candidates.map((id) => [id, vector(stored.get(id)!, none, nowMs)]));
      return rankBounded(me, interestsOnly, limit, options.factsBatch, async (ids) => {
        const inputs = await facts.similarityInputs(ids, nowMs);
        return new Map(
          ids.map((id) => {
            const f = inputs.get(id)!;
            return [id, f.allowed ? vector(stored.get(id)!, f, nowMs) : undefined];
          }),
        );
      });
    },
  };
}
