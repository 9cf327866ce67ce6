/**
 * The chunks of several partitions in one call (BatchConsumer's `applyTogether`): every chunk's
 * events up to its next link in one store round, links between the waves. Whatever the waves, the
 * outcome must be the one of applying the chunks one after the other — scores, aliases, the per-tag
 * index — and a redelivery of the whole call must change nothing.
 */
import { topicMessageSchema, type TopicMessage } from '@pstream/events';
import { createInterestStore, keys, readWholeTagIndex } from '@pstream/interest-store';
import { createRedis, scanKeys, type Redis } from '@pstream/platform';
import { loadDefaultEnv, silentLog, testId } from '@pstream/testkit';
import { storedScores } from '@pstream/testkit/streams';
import { loadConfig, storeOptions, type ScorerConfig } from '../src/config';
import { createChunkApplier, createChunksApplier } from '../src/processor';

const HOUR = 3_600_000;
const base = Date.now() - 24 * HOUR;
let n = 0;

function message(fields: Record<string, unknown>): TopicMessage {
  const at = new Date(base + n * 60_000).toISOString();
  n++;
  return topicMessageSchema.parse({ v: 1, source: 'test', occurredAt: at, receivedAt: at, ...fields });
}
const event = (profileKey: string, id: string, type: string, target: string, tags: string[], extra = {}) =>
  message({
    kind: 'event',
    eventId: id,
    profileKey,
    anonymousId: profileKey,
    type,
    target: { type: 'product', id: target },
    tags,
    ...extra,
  });
const identify = (anon: string, user: string, id: string) =>
  message({ kind: 'identify', eventId: id, profileKey: user, userId: user, anonymousId: anon, traits: {} });

describe('the scorer applying several partitions’ chunks in one call', () => {
  let redis: Redis;
  let config: ScorerConfig;
  const prefix = `test:${testId()}`;

  beforeAll(() => {
    loadDefaultEnv();
    config = loadConfig({ ...process.env, REDIS_PREFIX: prefix });
    redis = createRedis(config, 'test-together');
  });

  afterAll(async () => {
    for await (const batch of scanKeys(redis, `${prefix}*`, 500)) await redis.del(...batch);
    redis.disconnect();
  });

  it('gives what applying the chunks one after the other gives, and nothing more when delivered again', async () => {
    // three partitions: links in the middle of two of them (waves), a duplicate inside one
    const a = [
      event('dev-a', 'a1', 'click', 'p-1', ['category:dress']),
      identify('dev-a', 'u-a', 'a2'),
      event('dev-a', 'a3', 'like', 'p-1', []),
      event('u-a', 'a4', 'follow', 'p-2', ['brand:acme']),
    ];
    const b = [
      event('u-b', 'b1', 'click', 'p-3', ['style:casual']),
      event('dev-b', 'b2', 'click', 'p-1', ['category:dress']),
      identify('dev-b', 'u-b', 'b3'),
      event('dev-b', 'b4', 'dwell', 'p-1', [], { dwellMs: 61_000 }),
      identify('dev-b2', 'u-b', 'b5'),
    ];
    const c = [
      event('u-c', 'c1', 'share', 'p-2', ['brand:acme']),
      event('u-c', 'c2', 'click', 'p-4', ['category:shoes']),
      event('u-c', 'c1', 'share', 'p-2', ['brand:acme']),
    ];
    const people = ['dev-a', 'u-a', 'u-b', 'dev-b', 'dev-b2', 'u-c'];

    const oneByOne = `${prefix}:single`;
    const single = createChunkApplier(
      createInterestStore(redis, oneByOne, storeOptions(config)),
      redis,
      config,
      silentLog,
    );
    let singleDuplicates = 0;
    for (const chunk of [a, b, c]) singleDuplicates += (await single(chunk)).duplicates;

    const together = `${prefix}:together`;
    const store = createInterestStore(redis, together, storeOptions(config));
    const applyAll = createChunksApplier(store, redis, config, silentLog);
    const first = await applyAll([a, b, c]);

    expect(first.duplicates).toBe(singleDuplicates);
    expect(first.duplicates).toBe(1);
    const want = await storedScores(redis, oneByOne, people);
    expect(await storedScores(redis, together, people)).toEqual(want);
    expect(want.get('u-a')!.size).toBeGreaterThan(0);
    expect(want.get('dev-a')!.size).toBe(0); // merged away
    for (const id of people) expect(await store.resolve(id)).toBe(id.replace(/^dev-(\w)\d?$/, 'u-$1'));
    expect(await readWholeTagIndex(redis, keys(together))).toEqual(await readWholeTagIndex(redis, keys(oneByOne)));

    // the whole call again (a retry after a failure that came after the writes): every event a duplicate
    const again = await applyAll([a, b, c]);
    expect(again.duplicates).toBe(a.length + b.length + c.length - 3); // the three identifies are no events
    expect(await storedScores(redis, together, people)).toEqual(want);
  });
});
