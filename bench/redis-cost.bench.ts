/**
 * `pnpm bench:cost:redis` — Redis bytes per person and per event, and the store's events/s, at
 * each population size (redis-cost.ts). BENCH_COST_SIZES (default 10000,100000,1000000),
 * BENCH_PREFIX (default `bench`); everything under its own Redis prefix, removed at the end.
 */
import { createRedis } from '@pstream/platform';
import { loadConfig } from '@pstream/scorer/config';
import { loadDefaultEnv, testId } from '@pstream/testkit';
import { runCli } from './cli';
import { clearPrefix } from './redis-bench';
import { runRedisCost } from './redis-cost';

async function main(): Promise<void> {
  loadDefaultEnv();
  const sizes = (process.env.BENCH_COST_SIZES ?? '10000,100000,1000000').split(',').map(Number);
  if (sizes.some((n) => !Number.isInteger(n) || n < 1))
    throw new Error(`BENCH_COST_SIZES must be positive integers, got ${process.env.BENCH_COST_SIZES}`);
  const config = loadConfig({
    ...process.env,
    REDIS_PREFIX: `${process.env.BENCH_PREFIX ?? 'bench'}:${testId()}`,
    LOG_LEVEL: 'silent',
  });
  const redis = createRedis(config, 'bench-cost');
  try {
    console.log(`Redis cost benchmark: ${sizes.join(', ')} people, ${config.REDIS_URL}`);
    await runRedisCost(redis, config, { sizes }, (line) => console.log(line));
  } finally {
    await clearPrefix(redis, config.REDIS_PREFIX);
    redis.disconnect();
  }
}

runCli(main);
