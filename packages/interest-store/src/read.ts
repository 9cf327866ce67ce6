import { decayedScore, tagDimension, tagValue, type DecayParams } from '@pstream/scoring';
import type { Redis } from 'ioredis';
import type { Keys } from './keys';

export type Interest = { tag: string; dimension: string; score: number; value: number };

/**
 * A person's top interests decayed to `nowMs`. All stored scores share one landmark, so the
 * stored order is the decayed order and the top N is a plain ZREVRANGE.
 */
export async function readInterests(
  redis: Redis,
  k: Keys,
  profileKey: string,
  options: { nowMs: number; limit: number; decay: DecayParams; valueScale: number },
): Promise<Interest[]> {
  const flat = await redis.zrevrange(k.interests(profileKey), 0, options.limit - 1, 'WITHSCORES');
  const out: Interest[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const tag = flat[i] as string;
    const score = decayedScore(Number(flat[i + 1]), options.nowMs, options.decay);
    out.push({ tag, dimension: tagDimension(tag), score, value: tagValue(score, options.valueScale) });
  }
  return out;
}
