/**
 * Microbench (not a pnpm script): the query API's interest reads against the scorer's Redis, client
 * CPU and wall time per read (and the store's client CPU per event while it fills), on people the store of this checkout wrote (the cost bench's traffic,
 * 24 events a person). Run it in two checkouts back to back to compare how they keep interests
 * (e.g. a state that carries its scores against `:int`):
 *   `tsx bench/interest-read.micro.ts` — BENCH_PEOPLE (2000), BENCH_ROUNDS (5), BENCH_PREFIX.
 * Reads: `readInterests` (the profile's top 20, `/v1/profiles/{id}`), `readStoredInterests` of 200
 * people at once (the followers' top interests and `/similar`'s vectors), 50 reads in flight.
 */
import { createInterestStore, readInterests, readStoredInterests } from '@pstream/interest-store';
import { createRedis } from '@pstream/platform';
import { loadConfig, storeOptions } from '@pstream/scorer/config';
import { prepareEvent } from '@pstream/scorer/score';
import { loadDefaultEnv, testId } from '@pstream/testkit';
import { runCli } from './cli';
import { sampledAllocation } from './heap-sample';
import { clearPrefix } from './redis-bench';
import { benchStream, interleave } from './scorer-throughput';

async function main(): Promise<void> {
  loadDefaultEnv();
  const people = Number(process.env.BENCH_PEOPLE ?? 2000);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
  const config = loadConfig({
    ...process.env,
    REDIS_PREFIX: `${process.env.BENCH_PREFIX ?? 'bench'}:${testId()}`,
    LOG_LEVEL: 'silent',
  });
  const redis = createRedis(config, 'bench-interest-read');
  const options = storeOptions(config);
  const store = createInterestStore(redis, config.REDIS_PREFIX, options);
  try {
    const { messages, people: ids } = benchStream(11, people * 24, 24);
    const prepared = interleave(messages).map((m) => prepareEvent(m, new Map()));
    const measure = async (name: string, n: number, f: () => Promise<void>) => {
      const cpu = process.cpuUsage();
      const t0 = performance.now();
      await f();
      const ms = performance.now() - t0;
      const used = process.cpuUsage(cpu);
      console.log(
        `${name}: ${((used.user + used.system) / n).toFixed(1)} µs CPU each, ${((ms * 1000) / n).toFixed(1)} µs wall each`,
      );
    };
    // the fill: the scorer's store (client side) applying the traffic in chunks of 500
    await measure('store.apply, an event', prepared.length, async () => {
      for (let i = 0; i < prepared.length; i += 500) await store.apply(prepared.slice(i, i + 500));
    });
    const read = { nowMs: Date.now(), limit: 20, decay: options.scoring.decay, valueScale: 10 };
    for (let r = 0; r < rounds; r++) {
      await measure('readInterests (top 20)', ids.length, async () => {
        for (let i = 0; i < ids.length; i += 50)
          await Promise.all(ids.slice(i, i + 50).map((id) => readInterests(redis, store.keys, id, read)));
      });
      const names = ['storedScores', 'ordered', 'readInterests', 'mgetBuffer'];
      const bytes = await sampledAllocation(async () => {
        for (let i = 0; i < ids.length; i += 50)
          await Promise.all(ids.slice(i, i + 50).map((id) => readInterests(redis, store.keys, id, read)));
      }, names);
      console.log(
        `readInterests: ${(bytes.total / ids.length / 1024).toFixed(2)} KB allocated per read (${names
          .map((n) => `${n} ${(bytes.by[n]! / ids.length / 1024).toFixed(2)}`)
          .join(', ')})`,
      );
      for (const [frame, n] of bytes.top) console.log(`  ${(n / ids.length).toFixed(0)} B ${frame}`);
      await measure('readStoredInterests (200 people a call), a person', ids.length, async () => {
        for (let i = 0; i < ids.length; i += 200) await readStoredInterests(redis, store.keys, ids.slice(i, i + 200));
      });
    }
  } finally {
    await clearPrefix(redis, config.REDIS_PREFIX);
    redis.disconnect();
  }
}

runCli(main);
