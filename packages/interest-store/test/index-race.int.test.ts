import { Redis } from 'ioredis';
import { explicitTags, targetTag, type ScoringParams } from '@pstream/scoring';
import type { Redis as RedisClient } from '@pstream/platform';
import { testId } from '@pstream/testkit';
import {
  createInterestStore,
  keys,
  readStoredInterests,
  readWholeTagIndex,
  tagCountAtLeast,
  tagScoresOf,
  type PreparedEvent,
  type StoreOptions,
} from '../src';
import { testScoringParams } from '@pstream/scoring/testing';

const L = Date.parse('2026-01-01T00:00:00Z');
const DAY = 86_400_000;
const scoring: ScoringParams = testScoringParams({ maxOpenVisits: 4 });
const options: StoreOptions = { scoring, maxTagsPerPerson: 1000, latenessMs: 2 * DAY, dedupeWindowMs: 3 * DAY };
const target = { type: 'product' as const, id: 'p-1' };

function prepared(id: string, type: string, occurredMs: number): PreparedEvent {
  return {
    profileKey: 'u-index',
    member: `test|${id}`,
    receivedMs: Date.now(),
    type,
    occurredMs,
    targetKey: targetTag(target),
    dwellMs: undefined,
    tags: explicitTags(['category:dress'], target),
  };
}

/**
 * The guarded write protects a person's state (and the scores it carries), but the per-tag index is written after
 * it, outside the guard (ZADD of the values this writer computed). A zombie whose guarded write
 * landed and that stalls before its index write puts its older score over the new owner's in the
 * index — until it settles the index: it sees the state carries another writer's version now and
 * rewrites the entries it wrote from the person's stored scores (store.ts settleTagIndex).
 */
describe('the per-tag index against a zombie scorer', () => {
  it('keeps the new owner’s score when a zombie’s index write lands after it', async () => {
    const prefix = `test:${testId()}`;
    const redis = new Redis(process.env.REDIS_URL!);
    const other = new Redis(process.env.REDIS_URL!);
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let stalled = false;
    // the zombie's client: its first pipeline that writes the per-tag index waits for `release`
    const zombieClient = new Proxy(redis, {
      get(t, prop) {
        if (prop === 'pipeline')
          return () => {
            const pipeline = t.pipeline();
            let index = false;
            // the index write: one script call per tag (tag-range.ts RANGE_WRITE, or tag-index.ts TAG_INDEX_WRITE)
            for (const name of ['pstreamRangeWrite', 'pstreamTagIndexWrite'] as const) {
              const write = pipeline[name]?.bind(pipeline) as ((...a: unknown[]) => typeof pipeline) | undefined;
              if (!write) continue;
              (pipeline as unknown as Record<string, unknown>)[name] = (...a: unknown[]) => {
                if (String(a[0]).startsWith(`${prefix}:tag:`)) index = true;
                return write(...a);
              };
            }
            const exec = pipeline.exec.bind(pipeline);
            pipeline.exec = (async () => {
              if (index && !stalled) {
                stalled = true;
                await released;
              }
              return exec();
            }) as typeof pipeline.exec;
            return pipeline;
          };
        const v = Reflect.get(t, prop, t) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
      },
    }) as unknown as RedisClient;
    try {
      const zombie = createInterestStore(zombieClient, prefix, options);
      const owner = createInterestStore(other as unknown as RedisClient, prefix, options);
      // the zombie's state write lands; it stalls before its index write
      const zombieApply = zombie.apply([prepared('click', 'click', L + DAY)]);
      for (let i = 0; !stalled; i++) {
        if (i > 2_000) throw new Error('the zombie never reached its index write');
        await new Promise((r) => setTimeout(r, 10));
      }
      // the new owner gets the click again and a share that joins its visit: the score triples
      await owner.apply([prepared('click', 'click', L + DAY), prepared('share', 'share', L + DAY + 60_000)]);
      release();
      await zombieApply;
      const client = redis as unknown as RedisClient;
      const own = (await readStoredInterests(client, keys(prefix), ['u-index'])).get('u-index')!.get('category:dress');
      const [indexed] = await tagScoresOf(client, keys(prefix), 'category:dress', ['u-index']);
      expect(own).toBeGreaterThan(0);
      expect(indexed).toBe(own);
      // one entry: the zombie's (written as new, beside the owner's) went with the settle
      expect((await readWholeTagIndex(client, keys(prefix))).get('category:dress')).toEqual(
        new Map([['u-index', own]]),
      );
      expect(await tagCountAtLeast(client, keys(prefix), 'category:dress', -Number.MAX_VALUE)).toBe(1);
    } finally {
      const stale = await redis.keys(`${prefix}:*`);
      if (stale.length > 0) await redis.del(...stale);
      redis.disconnect();
      other.disconnect();
    }
  });
});
