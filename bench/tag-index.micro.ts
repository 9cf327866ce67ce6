/**
 * The per-tag index's bytes per entry and its command costs, by set size and member form, on the
 * Redis at REDIS_URL with whatever `zset-max-listpack-entries` that server has (printed first):
 * run it against servers started with different settings to compare them (BENCHMARKS.md).
 *
 * Each set holds `n` entries member → a stored score of the kind the index holds (a double with
 * all 17 digits, as forward-decayed scores are); the members are today's profile keys of the
 * scorer's bench traffic (`u-1000-123`), 36-character UUIDs (a deployment keyed by UUIDs), and
 * 6-byte compact ids (what a member would be with an id ↔ key lookup beside the index). Bytes:
 * `MEMORY USAGE … SAMPLES 0` ÷ n. Costs: µs per ZADD updating an existing entry (pipelined, 2 000),
 * and µs per ZRANGEBYSCORE of the top 1 % (at least 10 entries), 200 in a row.
 * BENCH_PREFIX (default `bench`); its keys are removed at the end.
 */
import { prng } from '@pstream/testkit';
import { runCli } from './cli';
import { microBenchRedis } from './redis-bench';

const SIZES = [100, 128, 129, 256, 512, 1_000, 1_024, 1_025, 10_000];
const FORMS: Record<string, (i: number) => string> = {
  'profile key (u-1000-123)': (i) => `u-${1_000 + Math.floor(i / 2_000)}-${i}`,
  'UUID (36 chars)': (i) => `0b7c4f1e-3a2d-4e5f-9a8b-${i.toString(16).padStart(12, '0')}`,
  'compact id (6 bytes)': (i) => i.toString(36).padStart(6, '0'),
};

async function main(): Promise<void> {
  const { config, redis } = microBenchRedis('bench-tag-index');
  const rand = prng(7);
  const key = `${config.REDIS_PREFIX}:tagidx`;
  try {
    const setting = (await redis.call('CONFIG', 'GET', 'zset-max-listpack-entries')) as string[];
    console.log(`${config.REDIS_URL}: zset-max-listpack-entries ${setting[1] ?? '?'}`);
    console.log('| member | entries | encoding | B/entry | ZADD update µs | ZRANGEBYSCORE top 1 % µs |');
    console.log('|---|---|---|---|---|---|');
    for (const [form, member] of Object.entries(FORMS)) {
      for (const n of SIZES) {
        await redis.unlink(key);
        const scores = Array.from({ length: n }, () => rand() * 1_000);
        for (let i = 0; i < n; i += 1_000) {
          const args: (string | number)[] = [];
          for (let j = i; j < Math.min(n, i + 1_000); j++) args.push(scores[j]!, member(j));
          await redis.zadd(key, ...args);
        }
        const encoding = (await redis.object('ENCODING', key)) as string;
        const bytes = Number(await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'));
        let t0 = performance.now();
        const p = redis.pipeline();
        for (let u = 0; u < 2_000; u++) {
          const j = Math.floor(rand() * n);
          p.zadd(key, rand() * 1_000, member(j));
        }
        await p.exec();
        const zadd = ((performance.now() - t0) * 1_000) / 2_000;
        const min = [...scores].sort((a, b) => b - a)[Math.max(9, Math.floor(n / 100))]!;
        t0 = performance.now();
        for (let r = 0; r < 200; r++) await redis.zrangebyscore(key, min, '+inf');
        const range = ((performance.now() - t0) * 1_000) / 200;
        console.log(
          `| ${form} | ${n} | ${encoding} | ${(bytes / n).toFixed(1)} | ${zadd.toFixed(1)} | ${range.toFixed(1)} |`,
        );
      }
    }
  } finally {
    await redis.unlink(key);
    redis.disconnect();
  }
}

runCli(main);
