import { Redis } from 'ioredis';
import type { Redis as RedisClient } from '@pstream/platform';
import { prng, testId } from '@pstream/testkit';
import {
  BUCKET_LOAD,
  keys,
  nearestInTags,
  readWholeTagIndex,
  tagCountAtLeast,
  tagMembersAtLeast,
  tagScoresOf,
  writeTagIndex,
  type Keys,
  type TagChange,
} from '../src';

const TAG = 'category:dress';

/**
 * The per-tag index in buckets answers every reader exactly as one sorted set of the same entries
 * does (`ref`, written with plain ZADD/ZREM beside it): the layout before buckets, and Redis's own
 * order of equal scores.
 */
describe('the per-tag index in listpack buckets', () => {
  let redis: Redis;
  let client: RedisClient;
  let prefix: string;
  let k: Keys;
  let ref: string;

  beforeEach(() => {
    redis = new Redis(process.env.REDIS_URL!);
    client = redis as unknown as RedisClient;
    prefix = `test:${testId()}`;
    k = keys(prefix, { tagBuckets: true });
    ref = `${prefix}:ref`;
  });
  afterEach(async () => {
    const stale = await redis.keys(`${prefix}:*`);
    if (stale.length > 0) await redis.del(...stale);
    redis.disconnect();
  });

  /** Applies changes to the index and to the reference set alike. */
  async function write(changes: TagChange[]): Promise<void> {
    await writeTagIndex(client, k, changes);
    const p = redis.pipeline();
    for (const c of changes) {
      if (c.score === null) p.zrem(ref, c.person);
      else p.zadd(ref, c.score, c.person);
    }
    await p.exec();
  }

  /** Every reader of the index against the same question to the reference set. */
  async function expectSameAnswers(people: string[], random: () => number): Promise<void> {
    const all = (await redis.zrange(ref, 0, -1, 'WITHSCORES')).filter((_, i) => i % 2 === 1).map(Number);
    const bounds = [-Number.MAX_VALUE, ...Array.from({ length: 6 }, () => all[Math.floor(random() * all.length)]!)];
    for (const min of bounds) {
      expect((await tagMembersAtLeast(client, k, TAG, min)).sort()).toEqual(
        (await redis.zrangebyscore(ref, min, '+inf')).sort(),
      );
      expect(await tagCountAtLeast(client, k, TAG, min)).toBe(await redis.zcount(ref, min, '+inf'));
    }
    const asked = [...people.slice(0, 300), 'nobody', ...people.slice(-50)];
    expect(await tagScoresOf(client, k, TAG, asked)).toEqual(
      ((await redis.zmscore(ref, ...asked)) as (string | null)[]).map((s) => (s === null ? null : Number(s))),
    );
    for (const n of [1, 7, 40, 500]) {
      const around = bounds.slice(1).map((score) => ({ tag: TAG, score }));
      const got = await nearestInTags(client, k, around, n);
      const want = await Promise.all(
        around.map(async ({ score }) => [
          ...(await redis.zrangebyscore(ref, score, '+inf', 'LIMIT', 0, n)),
          ...(await redis.zrevrangebyscore(ref, `(${score}`, '-inf', 'LIMIT', 0, n)),
        ]),
      );
      expect(got).toEqual(want);
    }
    const whole = (await readWholeTagIndex(client, k)).get(TAG) ?? new Map<string, number>();
    const flat = await redis.zrange(ref, 0, -1, 'WITHSCORES');
    expect(whole).toEqual(new Map(flat.flatMap((m, i) => (i % 2 === 0 ? [[m, Number(flat[i + 1])]] : []))));
  }

  /** The tag's buckets: how many, and every one a listpack. */
  async function buckets(): Promise<{ n: number; encodings: Set<string>; largest: number }> {
    const n = Number(await redis.hget(k.tagMeta(TAG), 'n'));
    const encodings = new Set<string>();
    let largest = 0;
    for (let i = 0; i < n; i++) {
      const size = await redis.zcard(k.tagBucket(TAG, i));
      largest = Math.max(largest, size);
      if (size > 0) encodings.add(String(await redis.object('ENCODING', k.tagBucket(TAG, i))));
    }
    return { n, encodings, largest };
  }

  it('answers holders, counts, scores and nearest people as one sorted set would, from listpack buckets', async () => {
    const random = prng(20);
    const people = Array.from({ length: 3_000 }, (_, i) => `u-${i}`);
    // forward-decayed magnitudes with full 17-digit fractions, and runs of equal scores (Redis orders those by member)
    const score = () => (random() < 0.1 ? 1234.5 : 10 ** (2 + 4 * random()));
    for (let i = 0; i < people.length; i += 500)
      await write(people.slice(i, i + 500).map((person) => ({ tag: TAG, person, score: String(score()) })));
    const grown = await buckets();
    expect(grown.n).toBeGreaterThanOrEqual(Math.floor(people.length / BUCKET_LOAD));
    expect([...grown.encodings]).toEqual(['listpack']);
    expect(grown.largest).toBeLessThanOrEqual(128);
    expect(Number(await redis.hget(k.tagMeta(TAG), 'c'))).toBe(people.length);
    await expectSameAnswers(people, random);

    // updates, removals and a later change of the same entry in one write (the later wins)
    const changes: TagChange[] = [];
    for (let i = 0; i < 800; i++) {
      const person = people[Math.floor(random() * people.length)]!;
      changes.push({ tag: TAG, person, score: random() < 0.3 ? null : String(score()) });
    }
    await write(changes);
    expect(Number(await redis.hget(k.tagMeta(TAG), 'c'))).toBe(await redis.zcard(ref));
    await expectSameAnswers(people, random);
  });

  it('reads an index written before buckets, and drains it into buckets as the tag is written', async () => {
    const random = prng(21);
    const people = Array.from({ length: 1_200 }, (_, i) => `v-${i}`);
    const scores = people.map(() => String(10 ** (2 + 4 * random())));
    // the layout of earlier versions: one sorted set per tag (a skiplist at this size)
    const old = people.flatMap((person, i) => [scores[i]!, person]);
    await redis.zadd(k.legacyTag(TAG), ...old);
    await redis.zadd(ref, ...old);
    expect(await redis.object('ENCODING', k.legacyTag(TAG))).toBe('skiplist');
    await expectSameAnswers(people, random);

    // each write moves its own people and up to LEGACY_MOVES others; answers stay the same throughout
    for (let round = 0; round < 3; round++) {
      await write(
        Array.from({ length: 20 }, () => ({
          tag: TAG,
          person: people[Math.floor(random() * people.length)]!,
          score: random() < 0.2 ? null : String(10 ** (2 + 4 * random())),
        })),
      );
      await expectSameAnswers(people, random);
    }
    expect(await redis.exists(k.legacyTag(TAG))).toBe(0);
    expect(await redis.hget(k.tagMeta(TAG), 'l')).toBe('0');
    const after = await buckets();
    expect([...after.encodings]).toEqual(['listpack']);
    expect(Number(await redis.hget(k.tagMeta(TAG), 'c'))).toBe(await redis.zcard(ref));
  });

  it('writes a tag as one set while buckets are off, and a tag already in buckets stays in them', async () => {
    const random = prng(22);
    const off = keys(prefix);
    const people = Array.from({ length: 300 }, (_, i) => `w-${i}`);
    const changes = people.map((person) => ({ tag: TAG, person, score: String(10 ** (2 + 4 * random())) }));
    await writeTagIndex(client, off, changes);
    await redis.zadd(ref, ...changes.flatMap((c) => [c.score, c.person]));
    expect(await redis.zcard(off.legacyTag(TAG))).toBe(people.length);
    expect(await redis.exists(off.tagMeta(TAG))).toBe(0);
    await expectSameAnswers(people, random);

    // buckets on: the tag moves over; off again: it is still written in buckets
    await write(people.slice(0, 10).map((person) => ({ tag: TAG, person, score: null })));
    expect(await redis.exists(off.legacyTag(TAG))).toBe(0);
    const moved = people.slice(10, 20).map((person) => ({ tag: TAG, person, score: '7' }));
    await writeTagIndex(client, off, moved);
    await redis.zadd(ref, ...moved.flatMap((c) => [c.score, c.person]));
    expect(await redis.exists(off.legacyTag(TAG))).toBe(0);
    await expectSameAnswers(people, random);
  });
});
