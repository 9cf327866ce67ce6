/**
 * The per-tag index in one sorted set (versions before buckets) against the same entries in
 * listpack buckets (interest-store tag-index.ts), for one tag of BENCH_HOLDERS holders (default
 * 10000,100000), in one run: bytes per entry, µs per written entry, and the latency of every reader's
 * question — holders above a bound (the top 1 % and the top half), their count, the scores of 1 000
 * people, and the 500 nearest on each side of a score (`/similar`) — median and p90 of
 * BENCH_RUNS (default 40) rounds, each starting with another way. The one set is asked with the single
 * command each reader sent before buckets and through the readers (buckets off); the buckets through
 * the readers. Members are profile keys
 * of the scorer bench's form (`u-1000-123`), scores doubles with 17 digits. BENCH_PREFIX (default
 * `bench`); its keys are removed at the end.
 */
import {
  keys,
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
  const k = keys(config.REDIS_PREFIX, { tagBuckets: true });
  // the one set is a tag's index under a prefix of its own, so the readers can read it too (buckets off)
  const kOne = keys(`${config.REDIS_PREFIX}:one`);
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
      const oneBytes = await bytesOf(redis, one);
      const bucketBytes = await bytesOf(redis, `${k.legacyTag(TAG)}:*`);
      const buckets = Number(await redis.hget(k.tagMeta(TAG), 'n'));
      console.log(
        `\n${n} holders: one set ${(oneBytes / n).toFixed(1)} B/entry (${String(await redis.object('ENCODING', one))}), ` +
          `${buckets} buckets ${(bucketBytes / n).toFixed(1)} B/entry with the meta hash; ` +
          `fill µs/entry: one set ${oneFill.toFixed(1)} (ZADD 1 000 a command), buckets ${bucketFill.toFixed(1)} (script, 500 a call)`,
      );
      // updates of existing entries, as the scorer's index writes are
      const updates = Array.from({ length: 2_000 }, () => Math.floor(rand() * n));
      t0 = performance.now();
      const p = redis.pipeline();
      for (const j of updates) p.zadd(one, 10 ** (2 + 4 * rand()), member(j));
      await p.exec();
      const oneUpdate = ((performance.now() - t0) * 1_000) / updates.length;
      t0 = performance.now();
      await writeTagIndex(
        redis,
        k,
        updates.map((j) => ({ tag: TAG, person: member(j), score: String(10 ** (2 + 4 * rand())) })),
      );
      const bucketUpdate = ((performance.now() - t0) * 1_000) / updates.length;
      console.log(
        `update µs/entry (2 000 in one pipeline / 2 script calls): one set ${oneUpdate.toFixed(1)}, buckets ${bucketUpdate.toFixed(1)}`,
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
        '| question | one set, one command p50 ms (p90) | one set, readers | buckets, readers | buckets ÷ one command (p50) |',
      );
      console.log('|---|---|---|---|---|');
      for (const [name, command, readers] of questions) {
        const ways = [command, () => readers(kOne), () => readers(k)];
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
          `| ${name} | ${cell(times[0]!)} | ${cell(times[1]!)} | ${cell(times[2]!)} | ${(pct(times[2]!, 50) / pct(times[0]!, 50)).toFixed(1)} |`,
        );
      }
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
