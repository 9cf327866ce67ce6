import { MAX_ALIAS_HOPS } from '@pstream/events';
import { decayedScore, tagDimension, tagValue, type DecayParams } from '@pstream/scoring';
import { pipelineBySlot, type Redis } from '@pstream/platform';
import type { Keys } from './keys';
import { aliasLoop } from './errors';
import { dedupeDigests } from './state';

export type Interest = { tag: string; dimension: string; score: number; value: number };

/**
 * A person's top interests decayed to `nowMs`. All stored scores share one landmark, so the
 * stored order is the decayed order and the top N is a plain ZREVRANGE. An id merged into
 * another (§4.4) reads the profile it was merged into; past MAX_ALIAS_HOPS aliases it throws
 * IST_ALIAS_LOOP (read under the profile key Postgres resolves an id to, the chain is not followed). With `dimension`,
 * only that dimension's
 * tags count (the set is bounded per person, so filtering after the read is cheap).
 */
export async function readInterests(
  redis: Redis,
  k: Keys,
  profileKey: string,
  options: { nowMs: number; limit: number; decay: DecayParams; valueScale: number; dimension?: string },
): Promise<Interest[]> {
  const stop = options.dimension === undefined ? options.limit - 1 : -1;
  let id = profileKey;
  let flat: string[] | undefined;
  for (let hop = 0; hop <= MAX_ALIAS_HOPS && flat === undefined; hop++) {
    const p = k.person(id);
    // Both commands leave in the same tick: one round trip, and with the client's auto-pipelining
    // one socket write shared with whatever other requests sent in that tick (an explicit
    // pipeline is a write of its own: ~30 % more client CPU per read, measured).
    const [alias, range] = await Promise.all([redis.get(p.alias), redis.zrevrange(p.interests, 0, stop, 'WITHSCORES')]);
    if (alias === null) flat = range;
    else id = alias;
  }
  // a chain longer than the scorer follows is an error, not a person without interests
  if (flat === undefined) throw aliasLoop(`alias chain from ${profileKey} longer than ${MAX_ALIAS_HOPS} hops`);
  const out: Interest[] = [];
  for (let i = 0; i + 1 < flat.length && out.length < options.limit; i += 2) {
    const tag = flat[i] as string;
    const dimension = tagDimension(tag);
    if (options.dimension !== undefined && dimension !== options.dimension) continue;
    const score = decayedScore(Number(flat[i + 1]), options.nowMs, options.decay);
    out.push({ tag, dimension, score, value: tagValue(score, options.valueScale) });
  }
  return out;
}

/**
 * Whether the scorer has seen `id`: its state, interests, merge alias or (layout before event time)
 * dedupe record exist (one hash tag, so Redis Cluster-safe). The query API answers 404 only when
 * neither store knows an id.
 */
export async function knowsPerson(redis: Redis, k: Keys, id: string): Promise<boolean> {
  const p = k.person(id);
  return (await redis.exists(p.state, p.interests, p.seen, p.alias)) > 0;
}

/**
 * Each person's dedupe record: the digests (`memberDigest`) of the events applied to them and
 * still inside the dedupe window, one GET per person in one pipeline. For tools and tests that
 * check what was applied.
 */
export async function readAppliedDigests(
  redis: Redis,
  k: Keys,
  people: readonly string[],
): Promise<Map<string, Set<string>>> {
  const replies = await pipelineBySlot(
    redis,
    people,
    (id) => k.person(id).state,
    (pipeline, id) => void pipeline.getBuffer(k.person(id).state),
  );
  const out = new Map<string, Set<string>>();
  people.forEach((id, i) => {
    const [err, raw] = replies[i] ?? [new Error('no reply'), undefined];
    if (err) throw err;
    out.set(id, Buffer.isBuffer(raw) ? dedupeDigests(raw) : new Set());
  });
  return out;
}
