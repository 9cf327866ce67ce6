/** Helpers shared by the benches: medians and percentiles, number formatting, Redis clean-up, Redis's raw limit. */
import { execFileSync } from 'node:child_process';
import { createRedis, scanKeys, type Redis } from '@pstream/platform';
import { loadConfig, type ScorerConfig } from '@pstream/scorer/config';
import { loadDefaultEnv, testId } from '@pstream/testkit';

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** The p-th percentile (0–100) of `xs`, nearest rank. */
export const pct = (xs: number[], p: number): number =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

/** A count or rate, rounded, with thousands separators. */
export const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

/** A Redis micro bench's setup: the scorer's config under a prefix of its own (BENCH_PREFIX, default `bench`) and a client. */
export function microBenchRedis(name: string): { config: ScorerConfig; redis: Redis } {
  loadDefaultEnv();
  const config = loadConfig({
    ...process.env,
    REDIS_PREFIX: `${process.env.BENCH_PREFIX ?? 'bench'}:${testId()}`,
    LOG_LEVEL: 'silent',
  });
  return { config, redis: createRedis(config, name) };
}

/** Removes every key under `prefix`, scanning again until a pass finds none. */
export async function clearPrefix(redis: Redis, prefix: string): Promise<void> {
  for (let found = 1; found > 0;) {
    found = 0;
    for await (const batch of scanKeys(redis, `${prefix}:*`)) {
      found += batch.length;
      await Promise.all(batch.map((key) => redis.unlink(key))); // one key per call: keys of a Cluster sit in many slots
    }
  }
}

/** The raw limit: `redis-benchmark -P 16` pipelined ZINCRBY on a throwaway key, ops/s. */
export function zincrbyOpsPerSec(url: URL, key: string, n: number, cluster: boolean): number {
  const args = [
    '-h',
    url.hostname,
    '-p',
    url.port || '6379',
    ...(cluster ? ['--cluster'] : []),
    '-n',
    String(n),
    '-P',
    '16',
    '-r',
    '100000',
    '-q',
    'zincrby',
    key,
    '1',
    'member:__rand_int__',
  ];
  const out = execFileSync('redis-benchmark', args, { encoding: 'utf8' });
  const m = /([\d.]+) requests per second/.exec(out);
  if (!m) throw new Error(`unexpected redis-benchmark output: ${out}`);
  return Number(m[1]);
}
