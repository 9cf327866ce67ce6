/**
 * The interest store alone under a CPU profile (not a pnpm script): fills BENCH_PEOPLE people
 * (2 000) of BENCH_PER_PERSON events (80) through `store.apply` in chunks of BENCH_CHUNK (500), interleaved
 * (people's events round-robin, as live traffic mixes them) or, with BENCH_ORDER=contiguous, one
 * person's events together; prints events/s and this process' CPU µs per event. Run it as
 * `node --cpu-prof --cpu-prof-dir=DIR --import tsx bench/store-profile.ts`, then
 * `tsx bench/store-profile.ts --summary DIR/*.cpuprofile` prints the hottest functions. With
 * BENCH_APPLY_PROFILE=FILE it profiles only the apply loop (node:inspector, started after the stream is
 * generated and prepared, so neither that nor tsx's loading is in it) and writes FILE for `--summary`.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { createInterestStore } from '@pstream/interest-store';
import { createRedis } from '@pstream/platform';
import { loadConfig, storeOptions } from '@pstream/scorer/config';
import { prepareEvent } from '@pstream/scorer/score';
import { loadDefaultEnv, testId } from '@pstream/testkit';
import { summarizeProfile } from './ingest.bench';
import { clearPrefix } from './redis-bench';
import { benchStream, interleave } from './scorer-throughput';

async function main(): Promise<void> {
  if (process.argv[2] === '--summary') {
    console.log(summarizeProfile(process.argv[3]!));
    return;
  }
  loadDefaultEnv();
  const people = Number(process.env.BENCH_PEOPLE ?? 2000);
  const perPerson = Number(process.env.BENCH_PER_PERSON ?? 80);
  const config = loadConfig({
    ...process.env,
    REDIS_PREFIX: `${process.env.BENCH_PREFIX ?? 'bench'}:${testId()}`,
    LOG_LEVEL: 'silent',
  });
  const redis = createRedis(config, 'bench-store-profile');
  try {
    const store = createInterestStore(redis, config.REDIS_PREFIX, storeOptions(config));
    const { messages } = benchStream(11, people * perPerson, perPerson);
    const ordered = process.env.BENCH_ORDER === 'contiguous' ? messages : interleave(messages);
    const prepared = ordered.map((m) => prepareEvent(m, new Map()));
    const profileTo = process.env.BENCH_APPLY_PROFILE;
    const session = profileTo ? new Session() : undefined;
    if (session) {
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
    }
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const chunk = Number(process.env.BENCH_CHUNK ?? 500);
    for (let i = 0; i < prepared.length; i += chunk) await store.apply(prepared.slice(i, i + chunk));
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    if (session) {
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(profileTo!, JSON.stringify(profile));
      session.disconnect();
    }
    console.log(
      `${prepared.length} events, ${people} people: ${Math.round(prepared.length / seconds)} ev/s, ${((cpu.user + cpu.system) / prepared.length).toFixed(1)} µs CPU/event of this process`,
    );
  } finally {
    await clearPrefix(redis, config.REDIS_PREFIX);
    redis.disconnect();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
