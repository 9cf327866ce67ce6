/**
 * `pnpm bench:segmenter:floor`: the least any apply that keeps today's data model must write — each event's
 * dedupe record and activity row COPYed into the real tables — against the raw COPY of the segmenter's aim,
 * printed, never asserted (floor.ts; BENCHMARKS.md "The write floor"). BENCH_RUNS (default 4; the first
 * round warms up), BENCH_EVENTS (default 20 000), BENCH_CHUNK (events a transaction, default 5 000).
 */
import { commonEnv, parseEnv } from '@pstream/platform';
import { z } from 'zod';
import { runWriteFloor } from './floor';

const env = parseEnv(
  z.object({
    DATABASE_URL: commonEnv.DATABASE_URL,
    BENCH_RUNS: z.coerce.number().int().min(2).default(4),
    BENCH_EVENTS: z.coerce.number().int().min(1000).default(20_000),
    BENCH_CHUNK: z.coerce.number().int().min(1).max(100_000).default(5_000),
  }),
  process.env,
);

runWriteFloor({
  databaseUrl: env.DATABASE_URL,
  rounds: env.BENCH_RUNS,
  events: env.BENCH_EVENTS,
  chunk: env.BENCH_CHUNK,
  print: console.log,
})
  .then((f) => {
    const cpu = (x: number | null) => (x === null ? '?' : x.toFixed(1));
    console.log(
      `medians: floor ${f.floorRatio.toFixed(3)} of the raw COPY, without activity's secondary indexes ${f.bareRatio.toFixed(3)}, ` +
        `activity rows alone ${f.activityRatio.toFixed(3)}; CPU per event raw ${cpu(f.raw.cpuUs)} µs, floor ${cpu(f.floor.cpuUs)} µs, ` +
        `without the indexes ${cpu(f.bare.cpuUs)} µs, activity rows alone ${cpu(f.activity.cpuUs)} µs`,
    );
  })
  .catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
