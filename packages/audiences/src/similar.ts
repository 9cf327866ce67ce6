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
  out.sort((a, b) => b.similarity - a.similarity || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return out.slice(0, limit);
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
  /** Into how many statements at once the candidates' Postgres read is split (1: one statement). */
  parallel: number;
  /**
   * More connections to the same Redis server as the finder's: the candidates' states (~1 KB each, ~450 KB for 400)
   * are read over all of them at once, a share each (interest-store `readStoredInterests`). None: one connection.
   */
  connections?: readonly Redis[];
  /** Told each stage's wall time of an answer (ms), for benchmarks: `tags`, `nearest`, `shortlist`, `read` (of which `read.redis` and `read.postgres`, at once), `rank`. */
  onStage?: (stage: string, ms: number) => void;
};
export const DEFAULT_SIMILAR = { seedTags: 8, perTag: 500, exact: 400, parallel: 2 } as const;

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
 * Similar people (§5.3) without a scan of everyone: for each of the person's strongest tags, the
 * holders whose stored score is nearest the person's own (per-tag index, ids only, `perTag` on
 * each side); candidates are shortlisted by how many of those lists they are in, weighted by the
 * person's value in the tag, and each shortlisted candidate's similarity is the exact cosine of
 * the full vectors. Excludes the person; candidates pass the one consent filter.
 *
 * The candidates' interests (Redis, one pipeline) and their facts and consent (Postgres,
 * `similarityInputs`: one statement does both) are read at once; the Postgres part is split into
 * `parallel` statements over consecutive runs of the sorted keys, so a second core works on it.
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
  /** `similarityInputs` of `keys` in `options.parallel` statements at once (sorted, so each reads a run of the index). */
  const inputs = async (keys: string[], nowMs: number) => {
    const sorted = [...keys].sort();
    const size = Math.ceil(sorted.length / Math.max(1, options.parallel));
    const parts: string[][] = [];
    for (let i = 0; i < sorted.length; i += size) parts.push(sorted.slice(i, i + size));
    const got = await Promise.all(parts.map((part) => facts.similarityInputs(part, nowMs)));
    return new Map(got.flatMap((m) => [...m]));
  };
  return {
    vectors,
    async similar(
      profileKey: string,
      limit: number,
      nowMs: number,
      exclude: readonly string[] = [],
    ): Promise<Similar[]> {
      const stage = options.onStage;
      let t = stage ? performance.now() : 0;
      const lap = (name: string) => {
        if (!stage) return;
        const now = performance.now();
        stage(name, now - t);
        t = now;
      };
      const seeds = await strongestTags(redis, k, profileKey, options.seedTags);
      lap('tags');
      const lists = await nearestInTags(redis, k, seeds, options.perTag);
      lap('nearest');
      const weights = seeds.map((s) => tagValue(decayedScore(s.score, nowMs, options.decay), options.valueScale));
      const candidates = shortlist(lists, weights, new Set([profileKey, ...exclude]), options.exact);
      const people = [profileKey, ...candidates];
      lap('shortlist');
      const timed = <T>(name: string, p: Promise<T>): Promise<T> => {
        if (!stage) return p;
        const s = performance.now();
        return p.then((x) => (stage(name, performance.now() - s), x));
      };
      const [stored, read] = await Promise.all([
        timed('read.redis', readStoredInterests(redis, k, people, options.connections)),
        timed('read.postgres', inputs(people, nowMs)),
      ]);
      lap('read');
      const vector = (id: string) =>
        featureVector(stored.get(id)!, read.get(id)!, nowMs, options.decay, options.valueScale);
      const me = vector(profileKey);
      const others = new Map(candidates.filter((id) => read.get(id)!.allowed).map((id) => [id, vector(id)]));
      const ranked = rankSimilar(me, others, limit);
      lap('rank');
      return ranked;
    },
  };
}
