/**
 * The per-tag index in one sorted set (versions before buckets) against the same entries in
 * listpack buckets by a hash of the person (interest-store tag-index.ts, TAG_INDEX_LAYOUT=hash) and in
 * listpack buckets by score range (tag-range.ts, the default), for one tag of BENCH_HOLDERS holders (default
 * 10000,100000), in one run: bytes per entry, µs per written entry, and the latency of every reader's
 * question — holders above a bound (the top 1 % and the top half), their count, the scores of 1 000
 * people, and the 500 nearest on each side of a score (`/similar`) — median and p90 of
 * BENCH_RUNS (default 40) rounds, each starting with another way. The one set is asked with the single
 * command each reader sent before buckets and through the readers; the buckets through
 * the readers. The score-range readers of given people's scores read each person's state first (the
 * bench writes a state a person carrying 17 tags' scores, no events: smaller than a real one). Members are profile keys
 * of the scorer bench's form (`u-1000-123`), scores doubles with 17 digits. BENCH_PREFIX (default
 * `bench`); its keys are removed at the end.
 */
import {
  encodePacked,
  keys,
  moveTagIndex,
  nearestInTags,
  tagCountAtLeast,
  tagMembersAtLeast,
  tagScoresOf,
  writeTagIndex,
  type TagChange,
} from '@pstream/interest-store';
import { loadavg } from 'node:os';
import { scanKeys, type Redis } from '@pstream/platform';
import { prng } from '@pstream/testkit';
import { emptyState } from '@pstream/scoring';
import { runCli } from './cli';
import { microBenchRedis, pct } from './redis-bench';

const HOLDERS = (process.env.BENCH_HOLDERS ?? '10000,100000').split(',').map(Number);
const RUNS = Number(process.env.BENCH_RUNS ?? 40);
const TAG = 'category:dress';

const member = (i: number) => `u-${1_000 + Math.floor(i / 2_000)}-${i}`;

async function bytesOf(redis: Redis, pattern: string): Promise<number> {
  let total = 0;
  for await (const batch of scanKeys(redis, pattern)) {
    const p = redis.pipeline();
    for (const key of batch) p.call('MEMORY', 'USAGE', key, 'SAMPLES', '0');
    for (const [err, v] of (await p.exec()) ?? []) {
      if (err) throw err;
      total += Number(v ?? 0);
    }
  }
  return total;
}

async function main(): Promise<void> {
  const { config, redis } = microBenchRedis('bench-tag-index-read');
  const k = keys(`${config.REDIS_PREFIX}:hash`, { tagLayout: 'hash' });
  const kRange = keys(`${config.REDIS_PREFIX}:range`, { tagLayout: 'range' });
  // the one set is a tag's index under a prefix of its own, so the readers can read it too (buckets off)
  const kOne = keys(`${config.REDIS_PREFIX}:one`, { tagLayout: 'set' });
  const one = kOne.legacyTag(TAG);
  const rand = prng(11);
  try {
    console.log(
      `load average ${loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')}, ${RUNS} rounds`,
    );
    for (const n of HOLDERS) {
      const scores = Array.from({ length: n }, () => 10 ** (2 + 4 * rand()));
      // one set, as before buckets
      let t0 = performance.now();
      for (let i = 0; i < n; i += 1_000) {
        const args: (string | number)[] = [];
        for (let j = i; j < Math.min(n, i + 1_000); j++) args.push(scores[j]!, member(j));
        await redis.zadd(one, ...args);
      }
      const oneFill = ((performance.now() - t0) * 1_000) / n;
      // buckets, through the writer (chunks of 500 people, as the scorer's chunks)
      t0 = performance.now();
      for (let i = 0; i < n; i += 500) {
        const changes: TagChange[] = [];
        for (let j = i; j < Math.min(n, i + 500); j++)
          changes.push({ tag: TAG, person: member(j), score: String(scores[j]!) });
        await writeTagIndex(redis, k, changes);
      }
      const bucketFill = ((performance.now() - t0) * 1_000) / n;
      // score ranges, through the writer (a person new to the tag: old score none)
      t0 = performance.now();
      for (let i = 0; i < n; i += 500) {
        const changes: TagChange[] = [];
        for (let j = i; j < Math.min(n, i + 500); j++)
          changes.push({ tag: TAG, person: member(j), score: String(scores[j]!), old: null });
        await writeTagIndex(redis, kRange, changes);
      }
      const rangeFill = ((performance.now() - t0) * 1_000) / n;
      // each person's state, carrying their score in the tag and in 16 others (what the score readers read first)
      const held = new Map<string, number>();
      for (let i = 0; i < n; i += 1_000) {
        const p = redis.pipeline();
        for (let j = i; j < Math.min(n, i + 1_000); j++) {
          const own = new Map<string, number>([[TAG, scores[j]!]]);
          for (let t = 0; t < 16; t++) own.set(`brand:b${t}`, 10 ** (2 + 4 * rand()));
          p.set(kRange.person(member(j)).state, encodePacked('v1', emptyState(), new Map(), 0, own).raw);
          held.set(member(j), scores[j]!);
        }
        await p.exec();
      }
      const oneBytes = await bytesOf(redis, one);
      const bucketBytes = await bytesOf(redis, `${k.legacyTag(TAG)}:*`);
      const rangeBytes = await bytesOf(redis, `${kRange.legacyTag(TAG)}:*`);
      const buckets = Number(await redis.hget(k.tagMeta(TAG), 'n'));
      const ranges = await redis.zcard(kRange.tagDirectory(TAG));
      console.log(
        `\n${n} holders: one set ${(oneBytes / n).toFixed(1)} B/entry (${String(await redis.object('ENCODING', one))}), ` +
          `${buckets} hash buckets ${(bucketBytes / n).toFixed(1)} B/entry with the meta hash, ` +
          `${ranges} score ranges ${(rangeBytes / n).toFixed(1)} B/entry with the directory, counts and meta; ` +
          `fill µs/entry: one set ${oneFill.toFixed(1)} (ZADD 1 000 a command), hash buckets ${bucketFill.toFixed(1)}, score ranges ${rangeFill.toFixed(1)} (script, 500 a call)`,
      );
      // updates of existing entries, as the scorer's index writes are
      const updates = Array.from({ length: 2_000 }, () => Math.floor(rand() * n));
      // the same new scores in every layout (the answers are compared below)
      const next = updates.map(() => 10 ** (2 + 4 * rand()));
      t0 = performance.now();
      const p = redis.pipeline();
      updates.forEach((j, u) => p.zadd(one, next[u]!, member(j)));
      await p.exec();
      const oneUpdate = ((performance.now() - t0) * 1_000) / updates.length;
      t0 = performance.now();
      await writeTagIndex(
        redis,
        k,
        updates.map((j, u) => ({ tag: TAG, person: member(j), score: String(next[u]!) })),
      );
      const bucketUpdate = ((performance.now() - t0) * 1_000) / updates.length;
      // the same kind of updates in score ranges, with the old score the writer read (the state's)
      const rangeChanges: TagChange[] = updates.map((j, u) => {
        const was = held.get(member(j))!;
        const now = next[u]!;
        held.set(member(j), now);
        return { tag: TAG, person: member(j), score: String(now), old: String(was) };
      });
      t0 = performance.now();
      await writeTagIndex(redis, kRange, rangeChanges);
      const rangeUpdate = ((performance.now() - t0) * 1_000) / updates.length;
      // the states follow (the score readers look where the state says first)
      const ps = redis.pipeline();
      for (const j of new Set(updates)) {
        const own = new Map<string, number>([[TAG, held.get(member(j))!]]);
        for (let t = 0; t < 16; t++) own.set(`brand:b${t}`, 10 ** (2 + 4 * rand()));
        ps.set(kRange.person(member(j)).state, encodePacked('v1', emptyState(), new Map(), 0, own).raw);
      }
      await ps.exec();
      console.log(
        `update µs/entry (2 000 in one pipeline / 2 script calls): one set ${oneUpdate.toFixed(1)}, hash buckets ${bucketUpdate.toFixed(1)}, score ranges ${rangeUpdate.toFixed(1)}`,
      );

      const sorted = (await redis.zrange(one, 0, -1, 'WITHSCORES')).filter((_, i) => i % 2 === 1).map(Number);
      const top1 = sorted[Math.floor(n * 0.99)]!;
      const half = sorted[Math.floor(n * 0.5)]!;
      const asked = Array.from({ length: 1_000 }, () => member(Math.floor(rand() * n)));
      /** Each question: as one command to the one set, through the readers on the one set, through the readers on the buckets. */
      type Ask = (kk: typeof k) => Promise<unknown>;
      const questions: [string, () => Promise<unknown>, Ask][] = [
        [
          'holders, top 1 %',
          () => redis.zrangebyscore(one, top1, '+inf'),
          (kk) => tagMembersAtLeast(redis, kk, TAG, top1),
        ],
        [
          'holders, top half',
          () => redis.zrangebyscore(one, half, '+inf'),
          (kk) => tagMembersAtLeast(redis, kk, TAG, half),
        ],
        ['count, top half', () => redis.zcount(one, half, '+inf'), (kk) => tagCountAtLeast(redis, kk, TAG, half)],
        ['scores of 1 000 people', () => redis.zmscore(one, ...asked), (kk) => tagScoresOf(redis, kk, TAG, asked)],
        [
          '500 nearest each side',
          () =>
            Promise.all([
              redis.zrangebyscore(one, half, '+inf', 'LIMIT', 0, 500),
              redis.zrevrangebyscore(one, `(${half}`, '-inf', 'LIMIT', 0, 500),
            ]),
          (kk) => nearestInTags(redis, kk, [{ tag: TAG, score: half }], 500),
        ],
      ];
      console.log(
        '| question | one set, one command p50 ms (p90) | one set, readers | hash buckets, readers | score ranges, readers | hash ÷ one command (p50) | ranges ÷ one command |',
      );
      console.log('|---|---|---|---|---|---|---|');
      for (const [name, command, readers] of questions) {
        const ways = [command, () => readers(kOne), () => readers(k), () => readers(kRange)];
        // score ranges answer exactly as the one set does (order and ties included)
        if (JSON.stringify(await readers(kRange)) !== JSON.stringify(await readers(kOne)))
          throw new Error(`score ranges answer "${name}" differently from the one set`);
        const times = ways.map((): number[] => []);
        for (let r = 0; r < RUNS; r++) {
          // a different way goes first each round
          for (let j = 0; j < ways.length; j++) {
            const w = (r + j) % ways.length;
            const s = performance.now();
            await ways[w]!();
            times[w]!.push(performance.now() - s);
          }
        }
        const cell = (xs: number[]) => `${pct(xs, 50).toFixed(2)} (${pct(xs, 90).toFixed(2)})`;
        console.log(
          `| ${name} | ${cell(times[0]!)} | ${cell(times[1]!)} | ${cell(times[2]!)} | ${cell(times[3]!)} | ${(pct(times[2]!, 50) / pct(times[0]!, 50)).toFixed(1)} | ${(pct(times[3]!, 50) / pct(times[0]!, 50)).toFixed(1)} |`,
        );
      }
      // the move of a tag's one set into score ranges (`pnpm scorer:tag-index-move`): one script call, Redis held throughout
      t0 = performance.now();
      const moved = await moveTagIndex(redis, kOne, TAG);
      console.log(
        `move of the one set (${moved} entries) into score ranges: ${(performance.now() - t0).toFixed(0)} ms in one script call`,
      );
      if (
        JSON.stringify(await nearestInTags(redis, kOne, [{ tag: TAG, score: half }], 500)) !==
        JSON.stringify(await nearestInTags(redis, kRange, [{ tag: TAG, score: half }], 500))
      )
        throw new Error('the moved index answers differently');
      await redis.unlink(one);
      for await (const batch of scanKeys(redis, `${config.REDIS_PREFIX}:*`)) await redis.unlink(...batch);
    }
    console.log(
      `load average at the end ${loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')}`,
    );
  } finally {
    for await (const batch of scanKeys(redis, `${config.REDIS_PREFIX}:*`)) await redis.unlink(...batch);
    redis.disconnect();
  }
}

runCli(main);
