import type { Redis, Result } from 'ioredis';
import type { Keys } from './keys';

/**
 * One event's effect, applied atomically with its dedupe record: if `member` is new in the seen
 * set, every `tag += increment` is applied; otherwise nothing is. Seen entries older than the
 * dedupe window are trimmed in the same step so the set stays bounded.
 *
 * KEYS: seen, interests. ARGV: member, receivedMs, oldestKeptMs, then tag/increment pairs.
 */
const APPLY_SCRIPT = `
if redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1]) == 0 then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
for i = 4, #ARGV, 2 do
  redis.call('ZINCRBY', KEYS[2], ARGV[i + 1], ARGV[i])
end
return 1
`;

export type InterestDelta = {
  profileKey: string;
  source: string;
  eventId: string;
  receivedMs: number;
  /** tag → forward-decayed increment */
  increments: Map<string, number>;
};

declare module 'ioredis' {
  interface RedisCommander<Context> {
    pstreamApply(seen: string, interests: string, ...args: (string | number)[]): Result<number, Context>;
  }
}

/** Registers the script on a client (idempotent); ioredis sends EVALSHA and falls back to EVAL. */
export function defineApply(redis: Redis): void {
  if (typeof (redis as Partial<Redis>).pstreamApply === 'function') return;
  redis.defineCommand('pstreamApply', { numberOfKeys: 2, lua: APPLY_SCRIPT });
}

/**
 * Applies deltas in one pipeline (one round trip per batch); resolves with how many were new.
 * The pipeline is not a transaction across people, and need not be: each delta is atomic with its
 * own dedupe record, so replaying the whole batch after a crash applies only what was missing.
 */
export async function applyDeltas(redis: Redis, k: Keys, deltas: InterestDelta[], dedupeWindowMs: number): Promise<number> {
  defineApply(redis);
  const pipeline = redis.pipeline();
  for (const d of deltas) {
    const args: (string | number)[] = [`${d.source}|${d.eventId}`, d.receivedMs, d.receivedMs - dedupeWindowMs];
    for (const [tag, inc] of d.increments) args.push(tag, inc);
    pipeline.pstreamApply(k.seen(d.profileKey), k.interests(d.profileKey), ...args);
  }
  const results = (await pipeline.exec()) ?? [];
  let applied = 0;
  for (const [err, value] of results) {
    if (err) throw err;
    applied += Number(value);
  }
  return applied;
}
