import { readStoredInterests, strongestTags, topOfTag, type Keys } from '@pstream/interest-store';
import type { AudienceStore } from '@pstream/profile-store';
import { decayedScore, tagValue, type DecayParams } from '@pstream/scoring';
import type { Redis } from 'ioredis';

/** A §5.3 feature vector: one component per interest tag (its value at the instant) plus `$spend` and `$social`. */
export type Vector = Map<string, number>;

/**
 * The vector of SPEC §5.3 from what the stores hold: tag values (scale·tanh(score/scale)) decayed
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
  /** How many of each seed tag's strongest holders are read (ids only). */
  perTag: number;
  /** How many candidates get their full vector and the exact cosine: those in most of the seed lists. */
  exact: number;
};
export const DEFAULT_SIMILAR = { seedTags: 8, perTag: 1000, exact: 400 } as const;

/**
 * Orders candidates by how many of the seed lists they appear in (people sharing more of the
 * person's strong tags first), then by their best rank in any list; keeps `n`.
 */
export function shortlist(lists: readonly (readonly string[])[], skip: ReadonlySet<string>, n: number): string[] {
  const seen = new Map<string, { hits: number; best: number }>();
  for (const list of lists) {
    list.forEach((id, rank) => {
      if (skip.has(id)) return;
      const s = seen.get(id);
      if (s) {
        s.hits++;
        s.best = Math.min(s.best, rank);
      } else seen.set(id, { hits: 1, best: rank });
    });
  }
  return [...seen]
    .sort(([, a], [, b]) => b.hits - a.hits || a.best - b.best)
    .slice(0, n)
    .map(([id]) => id);
}

/**
 * Similar people (§5.3) without a scan of everyone: candidates are the strongest holders of the
 * person's strongest tags (per-tag index, ids only), shortlisted by how many of those tags they
 * share; each shortlisted candidate's similarity is the exact cosine of the full vectors.
 * Excludes the person; candidates pass the one consent filter.
 */
export function createSimilarFinder(redis: Redis, k: Keys, facts: Pick<AudienceStore, 'similarityFacts' | 'personalizationAllowed'>, options: SimilarOptions) {
  const vectors = async (people: readonly string[], nowMs: number): Promise<Map<string, Vector>> => {
    const [stored, f] = await Promise.all([readStoredInterests(redis, k, people), facts.similarityFacts(people, nowMs)]);
    return new Map(people.map((p) => [p, featureVector(stored.get(p)!, f.get(p)!, nowMs, options.decay, options.valueScale)]));
  };
  return {
    vectors,
    async similar(profileKey: string, limit: number, nowMs: number, exclude: readonly string[] = []): Promise<Similar[]> {
      const seeds = await strongestTags(redis, k, profileKey, options.seedTags);
      const lists = await Promise.all(seeds.map((t) => topOfTag(redis, k, t, options.perTag)));
      const candidates = shortlist(lists, new Set([profileKey, ...exclude]), options.exact);
      const allowed = await facts.personalizationAllowed(candidates);
      const all = await vectors([profileKey, ...allowed], nowMs);
      const me = all.get(profileKey)!;
      all.delete(profileKey);
      return rankSimilar(me, all, limit);
    },
  };
}
