import { Redis } from 'ioredis';
import type { Redis as RedisClient } from '@pstream/platform';
import { prng, testId } from '@pstream/testkit';
import {
  BUCKET_LOAD,
  keys,
  moveTagIndex,
  moveTagIndexes,
  nearestInTags,
  RANGE_SPLIT_AT,
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
    k = keys(prefix, { tagLayout: 'hash' });
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
    const off = keys(prefix, { tagLayout: 'set' });
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

  /** The tag's score-range buckets, checked: counts, bounds in order, no score in two buckets. */
  async function ranges(): Promise<{ n: number; encodings: Set<string>; largest: number; total: number }> {
    const dir = await redis.zrange(k.tagDirectory(TAG), 0, -1, 'WITHSCORES');
    const counts = await redis.hgetall(k.tagCounts(TAG));
    const encodings = new Set<string>();
    let largest = 0;
    let total = 0;
    let below = -Infinity;
    for (let i = 0; i < dir.length; i += 2) {
      const [id, bound] = [dir[i]!, i === 0 ? -Infinity : Number(dir[i + 1])];
      if (i === 0) expect(dir[1]).toBe('-inf');
      // a bucket `<id>k<e>` keeps its scores multiplied by 2^e
      const scale = 2 ** Number(/k(\d+)$/.exec(id)?.[1] ?? 0);
      const entries = (await redis.zrange(k.tagRangeBucket(TAG, id), 0, -1, 'WITHSCORES'))
        .filter((_, j) => j % 2 === 1)
        .map((s) => Number(s) / scale);
      expect(Number(counts[id] ?? 0)).toBe(entries.length);
      if (i > 0) expect(bound).toBeGreaterThan(below);
      if (entries.length > 0) {
        expect(entries[0]!).toBeGreaterThanOrEqual(bound);
        below = entries[entries.length - 1]!;
        encodings.add(String(await redis.object('ENCODING', k.tagRangeBucket(TAG, id))));
      } else below = Math.max(below, bound);
      largest = Math.max(largest, entries.length);
      total += entries.length;
    }
    expect(Object.keys(counts).sort()).toEqual(dir.filter((_, i) => i % 2 === 0).sort());
    expect(Number((await redis.hget(k.tagMeta(TAG), 'c')) ?? 0)).toBe(total);
    return { n: dir.length / 2, encodings, largest, total };
  }

  it('answers as one sorted set from score-range buckets, through splits, merges, moves between buckets and wrong old scores', async () => {
    k = keys(prefix);
    expect(k.tagLayout).toBe('range');
    const random = prng(23);
    const people = Array.from({ length: 3_000 }, (_, i) => `r-${i}`);
    const held = new Map<string, string>();
    // runs of equal scores (Redis orders those by member): a bucket never cuts one
    const score = () => String(random() < 0.02 ? 1234.5 : random() < 0.01 ? 99 : 10 ** (2 + 4 * random()));
    /** Changes with the old score each writer would know (sometimes a wrong or an unknown one). */
    const changes = (list: { person: string; score: string | null }[], wrong = 0): TagChange[] =>
      list.map(({ person, score: s }) => {
        const known = held.get(person) ?? null;
        const r = random();
        const old = r < wrong / 2 ? undefined : r < wrong ? '777' : known;
        if (s === null) held.delete(person);
        else held.set(person, s);
        return { tag: TAG, person, score: s, old };
      });
    for (let i = 0; i < people.length; i += 500)
      await write(changes(people.slice(i, i + 500).map((person) => ({ person, score: score() }))));
    const grown = await ranges();
    expect(grown.n).toBeGreaterThanOrEqual(Math.floor(people.length / RANGE_SPLIT_AT));
    expect([...grown.encodings]).toEqual(['listpack']);
    expect(grown.total).toBe(people.length);
    await expectSameAnswers(people, random);

    // updates (most move between buckets), removals, a later change of the same entry in one write, and old
    // scores that are wrong (a zombie writer, a lost write) or unknown (a settle): the entry is found wherever it is
    for (let round = 0; round < 3; round++) {
      const list = Array.from({ length: 800 }, () => ({
        person: people[Math.floor(random() * people.length)]!,
        score: random() < 0.3 ? null : score(),
      }));
      await write(changes(list, round === 0 ? 0 : 0.2));
      const now = await ranges();
      expect(now.total).toBe(await redis.zcard(ref));
      expect(now.largest).toBeLessThanOrEqual(RANGE_SPLIT_AT + 1);
      await expectSameAnswers(people, random);
    }

    // a zombie writer's index write lands after a newer writer's: it believes the person held nothing (a second
    // entry), then the settle (store.ts) rewrites the person from the state with the old score unknown: one entry
    const zombies = [...held.keys()].slice(0, 40);
    await writeTagIndex(
      client,
      k,
      zombies.map((person) => ({ tag: TAG, person, score: String(10 ** (7 + random())), old: null })),
    );
    await write(
      changes(
        zombies.map((person) => ({ person, score: score() })).map((c) => c),
        1,
      ),
    );
    await write(zombies.map((person) => ({ tag: TAG, person, score: held.get(person)!, old: undefined })));
    expect((await ranges()).total).toBe(await redis.zcard(ref));
    await expectSameAnswers(people, random);

    // most people leave: buckets merge, answers stay exact down to none
    const leaving = [...held.keys()].filter(() => random() < 0.9);
    await write(changes(leaving.map((person) => ({ person, score: null }))));
    const few = await ranges();
    expect(few.total).toBe(await redis.zcard(ref));
    expect(few.n).toBeLessThan(grown.n / 4);
    await expectSameAnswers(people, random);
    await write(changes([...held.keys()].map((person) => ({ person, score: null }))));
    expect((await ranges()).total).toBe(0);
    expect(await tagCountAtLeast(client, k, TAG, -Number.MAX_VALUE)).toBe(0);
    expect(await tagMembersAtLeast(client, k, TAG, -Number.MAX_VALUE)).toEqual([]);
    expect(await nearestInTags(client, k, [{ tag: TAG, score: 5 }], 3)).toEqual([[]]);
  });

  it('changes a score in place when the old and the new one fall in one bucket, and finds an entry that is not there', async () => {
    k = keys(prefix);
    const random = prng(26);
    // three buckets or more: scores 1 … 300, one entry each
    const people = Array.from({ length: 300 }, (_, i) => `s-${i}`);
    await write(people.map((person, i) => ({ tag: TAG, person, score: String(i + 1), old: null })));
    const before = await ranges();
    expect(before.n).toBeGreaterThanOrEqual(3);
    const bounds = (await redis.zrange(k.tagDirectory(TAG), 0, -1, 'WITHSCORES')).filter((_, i) => i % 2 === 1);
    const second = Number(bounds[1]);
    // in place: s-{second} moves up by a half within its bucket (its count, the directory, the total unchanged)
    const inPlace = `s-${second - 1}`;
    await write([{ tag: TAG, person: inPlace, score: String(second + 0.5), old: String(second) }]);
    // the entry of s-0 (score 1, the first bucket) with a wrong old score that falls in the new score's bucket:
    // added there, and removed from the first bucket
    await write([{ tag: TAG, person: 's-0', score: String(second + 0.25), old: String(second + 1) }]);
    // a removal and a re-add in place after it in one write
    await write([
      { tag: TAG, person: 's-5', score: null, old: '6' },
      { tag: TAG, person: 's-5', score: '6.5', old: '6' },
    ]);
    const after = await ranges();
    expect(after.total).toBe(people.length);
    expect(after.total).toBe(await redis.zcard(ref));
    expect(await tagScoresOf(client, k, TAG, [inPlace, 's-0', 's-5'])).toEqual([second + 0.5, second + 0.25, 6.5]);
    await expectSameAnswers(people, random);
  });

  it('refuses a score that is not a finite number before writing any change of the call', async () => {
    k = keys(prefix);
    await write([{ tag: TAG, person: 'a', score: '1', old: null }]);
    const before = await redis.dump(k.tagCounts(TAG));
    for (const score of ['NaN', 'inf', 'x'])
      await expect(
        writeTagIndex(client, k, [
          { tag: TAG, person: 'b', score: '2', old: null },
          { tag: TAG, person: 'c', score, old: null },
        ]),
      ).rejects.toThrow(`the score of c in ${TAG} is "${score}", not a finite number`);
    expect(await redis.dump(k.tagCounts(TAG))).toEqual(before);
    expect(await tagScoresOf(client, k, TAG, ['a', 'b'])).toEqual([1, null]);
  });

  it("stores the same bytes whether a tag's changes come in one call or one a call (adds, splits, moves)", async () => {
    // RANGE_WRITE keeps a call's bucket counts and bucket keys in Lua and writes the counts once at its end, and
    // hands scaled scores to ZADD as numbers: every key it leaves must be byte for byte what one change a call
    // leaves (counts written at once, against one count per change). Both sides run today's script, so this guards
    // the per-call bookkeeping, not a difference from an earlier script's bytes. No removal here takes a bucket under the merge size (a call's
    // merges run at its end, so a call of many could merge where calls of one do not).
    k = keys(prefix);
    const random = prng(31);
    const OTHER = 'category:shoe';
    const tagKeys = async (tag: string): Promise<string[]> => {
      const ids = (await redis.zrange(k.tagDirectory(tag), 0, -1)).map((id) => k.tagRangeBucket(tag, id));
      return [k.tagMeta(tag), k.tagDirectory(tag), k.tagCounts(tag), ...ids];
    };
    const dumps = async (tag: string) =>
      Promise.all((await tagKeys(tag)).map(async (key) => (await redis.dumpBuffer(key))?.toString('hex') ?? null));
    const score = () => String(10 ** (2 + 3 * random()));
    const held = new Map<string, string>();
    const seed: TagChange[] = Array.from({ length: 400 }, (_, i) => {
      const s = score();
      held.set(`b-${i}`, s);
      return { tag: TAG, person: `b-${i}`, score: s, old: null };
    });
    for (let i = 0; i < seed.length; i += 50) {
      const part = seed.slice(i, i + 50);
      await writeTagIndex(client, k, part);
      await writeTagIndex(
        client,
        k,
        part.map((c) => ({ ...c, tag: OTHER })),
      );
    }
    expect(await dumps(OTHER)).toEqual(await dumps(TAG));
    // new people (some past a split), then moves with the old score known, in place or to another bucket
    const batch: TagChange[] = Array.from({ length: 150 }, (_, i) => ({
      tag: TAG,
      person: `n-${i}`,
      score: score(),
      old: null,
    }));
    for (const person of [...held.keys()].filter(() => random() < 0.05))
      batch.push({
        tag: TAG,
        person,
        score: random() < 0.5 ? String(Number(held.get(person)) * 1.001) : score(),
        old: held.get(person)!,
      });
    await writeTagIndex(client, k, batch);
    for (const c of batch) await writeTagIndex(client, k, [{ ...c, tag: OTHER }]);
    expect((await ranges()).total).toBe(550);
    expect((await tagKeys(TAG)).length).toBeGreaterThan(3 + 400 / RANGE_SPLIT_AT);
    expect(await dumps(OTHER)).toEqual(await dumps(TAG));
  });

  it('keeps a run of equal scores longer than a bucket in one bucket, and answers in member order', async () => {
    k = keys(prefix);
    const random = prng(24);
    const people = Array.from({ length: 400 }, (_, i) => `t-${(i * 7919) % 400}`);
    await write(people.map((person, i) => ({ tag: TAG, person, score: i < 300 ? '500' : String(i), old: null })));
    const r = await ranges();
    expect(r.largest).toBeGreaterThanOrEqual(300);
    await expectSameAnswers(people, random);
  });

  it('grows a bucket of one score past the split size entry by entry, and splits it once another score lands in it', async () => {
    k = keys(prefix);
    const random = prng(28);
    // one entry a call, as the bench's seeding and a scorer add them: every add past RANGE_SPLIT_AT asks for a
    // split that cannot cut (one score); then scores below and above the run in the same bucket's range
    const run = Array.from({ length: RANGE_SPLIT_AT + 40 }, (_, i) => `u-${(i * 7919) % 1000}`);
    for (let i = 0; i < run.length; i += 20)
      await write(run.slice(i, i + 20).map((person) => ({ tag: TAG, person, score: '750.25', old: null })));
    const one = await ranges();
    expect(one.n).toBe(1);
    expect(one.largest).toBe(run.length);
    const others = Array.from({ length: 60 }, (_, i) => `w-${i}`);
    await write(
      others.map((person, i) => ({ tag: TAG, person, score: String(i < 30 ? 700 + i : 800 + i), old: null })),
    );
    const cut = await ranges();
    expect(cut.n).toBeGreaterThan(1);
    expect(cut.total).toBe(run.length + others.length);
    // the run stays whole in one bucket; the other scores are cut off it
    expect(cut.largest).toBe(run.length);
    await expectSameAnswers([...run, ...others], random);
  });

  it('reads and writes the score-range buckets of versions before scaled buckets, and rewrites them scaled', async () => {
    k = keys(prefix);
    const random = prng(27);
    const people = Array.from({ length: 1_000 }, (_, i) => `v-${i}`);
    const initial = people
      .map((person) => ({ person, score: 10 ** (2 + 4 * random()) }))
      .sort((a, b) => a.score - b.score);
    // as versions before wrote a tag: buckets `<id>` of 90 keeping their scores as they are
    const held = new Map<string, string>();
    const p = redis.pipeline();
    for (let b = 0; b * 90 < initial.length; b++) {
      const chunk = initial.slice(b * 90, b * 90 + 90);
      p.zadd(k.tagRangeBucket(TAG, String(b)), ...chunk.flatMap((e) => [String(e.score), e.person]));
      p.zadd(k.tagDirectory(TAG), b === 0 ? '-inf' : String(chunk[0]!.score), String(b));
      p.hset(k.tagCounts(TAG), String(b), chunk.length);
      p.hset(k.tagMeta(TAG), 'r', 1, 'i', b + 1, 'c', (b + 1) * 90);
      for (const e of chunk) held.set(e.person, String(e.score));
    }
    p.hset(k.tagMeta(TAG), 'c', initial.length);
    p.zadd(ref, ...initial.flatMap((e) => [String(e.score), e.person]));
    await p.exec();
    expect((await ranges()).total).toBe(people.length);
    await expectSameAnswers(people, random);

    // written by this version: moves between plain and scaled buckets, splits (scaled halves) and merges
    for (let round = 0; round < 3; round++) {
      const list = Array.from({ length: 400 }, () => {
        const person = round === 0 ? `w-${Math.floor(random() * 300)}` : people[Math.floor(random() * people.length)]!;
        const score = random() < 0.2 ? null : String(10 ** (2 + 4 * random()));
        const old = held.get(person) ?? null;
        if (score === null) held.delete(person);
        else held.set(person, score);
        return { tag: TAG, person, score, old };
      });
      await write(list);
      const now = await ranges();
      expect(now.total).toBe(await redis.zcard(ref));
      await expectSameAnswers([...people, ...Array.from({ length: 300 }, (_, i) => `w-${i}`)], random);
    }
    const dir = () => redis.zrange(k.tagDirectory(TAG), 0, -1);
    expect((await dir()).some((id) => !id.includes('k'))).toBe(true);
    expect((await dir()).some((id) => id.includes('k'))).toBe(true);

    // \`pnpm scorer:tag-index-move\` rewrites the plain buckets scaled, once
    const plain = await Promise.all(
      (await dir()).filter((id) => !id.includes('k')).map((id) => redis.zcard(k.tagRangeBucket(TAG, id))),
    );
    expect(await moveTagIndexes(client, k)).toEqual({ tags: 1, entries: plain.reduce((a, b) => a + b, 0) });
    for (const id of (await dir()).filter((id) => !id.includes('k')))
      expect(await redis.zcard(k.tagRangeBucket(TAG, id))).toBe(0);
    expect(await moveTagIndexes(client, k)).toEqual({ tags: 0, entries: 0 });
    const after = await ranges();
    expect(after.total).toBe(await redis.zcard(ref));
    expect([...after.encodings]).toEqual(['listpack']);
    await expectSameAnswers(people, random);
  });

  it('moves an index from one set and from hash buckets into score-range buckets, and writes each layout where it is', async () => {
    const random = prng(25);
    const people = Array.from({ length: 1_500 }, (_, i) => `m-${i}`);
    const hashed = keys(prefix, { tagLayout: 'hash' });
    const range = keys(prefix);
    // hash buckets drained from one set halfway: entries in both old layouts at once
    const initial = people.map((person) => ({ tag: TAG, person, score: String(10 ** (2 + 4 * random())) }));
    await redis.zadd(k.legacyTag(TAG), ...initial.flatMap((c) => [c.score, c.person]));
    await redis.zadd(ref, ...initial.flatMap((c) => [c.score, c.person]));
    k = hashed;
    await write(initial.slice(0, 50).map((c) => ({ ...c, score: String(Number(c.score) * 2) })));
    expect(await redis.exists(k.legacyTag(TAG))).toBe(1);
    expect(Number(await redis.hget(k.tagMeta(TAG), 'n'))).toBeGreaterThan(1);
    // a range writer writes a tag not moved yet in its own layout; the readers read it there
    k = range;
    await write(initial.slice(50, 60).map((c) => ({ ...c, score: '3' })));
    expect(await redis.exists(k.tagDirectory(TAG))).toBe(0);
    await expectSameAnswers(people, random);

    // `pnpm scorer:tag-index-move`: every tag of the prefix (another tag in one set beside it), once
    await redis.zadd(k.legacyTag('brand:x'), 5, 'm-1', 6, 'm-2');
    const seen: string[] = [];
    expect(await moveTagIndexes(client, k, (tag) => seen.push(tag))).toEqual({ tags: 2, entries: people.length + 2 });
    expect(seen).toEqual(['brand:x', TAG]);
    expect(await moveTagIndexes(client, k)).toEqual({ tags: 0, entries: 0 });
    expect(await moveTagIndex(client, k, TAG)).toBe(0);
    expect(await tagMembersAtLeast(client, k, 'brand:x', 5.5)).toEqual(['m-2']);
    expect(await redis.exists(k.legacyTag(TAG), k.tagBucket(TAG, 0), k.tagMoving(TAG))).toBe(0);
    const moved = await ranges();
    expect(moved.total).toBe(people.length);
    expect([...moved.encodings]).toEqual(['listpack']);
    await expectSameAnswers(people, random);

    // a writer of another layout writes a tag in score-range buckets there (a mixed fleet stays right)
    for (const kk of [hashed, keys(prefix, { tagLayout: 'set' }), range]) {
      k = kk;
      await write(
        Array.from({ length: 200 }, () => ({
          tag: TAG,
          person: people[Math.floor(random() * people.length)]!,
          score: random() < 0.2 ? null : String(10 ** (2 + 4 * random())),
        })),
      );
      k = range;
      expect((await ranges()).total).toBe(await redis.zcard(ref));
      await expectSameAnswers(people, random);
    }
    expect(await redis.exists(k.legacyTag(TAG), k.tagMeta(TAG) + 'x')).toBe(0);
  });
});
