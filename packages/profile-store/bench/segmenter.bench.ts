/**
 * `pnpm bench:segmenter`: figures for BENCHMARKS.md, printed, never asserted.
 *
 * 1. Apply throughput against the raw limit (bench/apply.ts): events/s through the segmenter's
 *    apply path (dedupe, identities, facts, aggregates, stage evaluation, consumer position — one
 *    transaction per 500-event chunk) fed directly rather than fetched from Kafka, alternating with
 *    a raw COPY of one narrow row per event in the same chunks; medians of rounds and their ratio,
 *    in events/s and in CPU per event (node plus the Postgres backend, from /proc: unlike wall
 *    time it does not depend on what else the machine runs). Once per transaction size of
 *    BENCH_CHUNKS (default 500, one partition's chunk, and 5000, what a segmenter that is behind
 *    applies in one transaction: bench/apply.ts BEHIND_CHUNK), the COPY in transactions of the same size.
 * 2. Sweep: 1M people generated with one set-based INSERT, 1% of them due; the time the sweep
 *    takes to re-evaluate (and move to at_risk) the due ones, and the same with 0.1% due — the
 *    ratio shows the cost following the number due, not the number of people.
 *
 * Everything lives in schemas of its own, dropped at the end. BENCH_RUNS (default 5),
 * BENCH_EVENTS (events per round, default 20000), BENCH_CHUNKS (events a transaction, a comma-separated
 * list; default 500,5000), BENCH_PEOPLE (default 1000000).
 */
import { randomBytes } from 'node:crypto';
import { DEFAULT_RULES } from '@pstream/lifecycle';
import { closePool, commonEnv, createLogger, createPool, parseEnv } from '@pstream/platform';
import { z } from 'zod';
import { createConverter, createSegmentStore, migrate } from '../src';
import { BEHIND_CHUNK, median, runSegmenterApply, type ApplyFigures } from './apply';

const env = parseEnv(
  z.object({
    DATABASE_URL: commonEnv.DATABASE_URL,
    BENCH_RUNS: z.coerce.number().int().min(1).default(5),
    BENCH_EVENTS: z.coerce.number().int().min(1000).default(20_000),
    BENCH_PEOPLE: z.coerce.number().int().min(1000).default(1_000_000),
    BENCH_CHUNKS: z
      .string()
      .default(`500,${BEHIND_CHUNK}`)
      .transform((s) => s.split(',').map((x) => Number(x.trim())))
      .pipe(z.array(z.number().int().min(1).max(100_000)).min(1)),
  }),
  process.env,
);

async function main(): Promise<void> {
  const applied: [number, ApplyFigures][] = [];
  for (const chunk of env.BENCH_CHUNKS)
    applied.push([
      chunk,
      await runSegmenterApply({
        databaseUrl: env.DATABASE_URL,
        rounds: env.BENCH_RUNS,
        events: env.BENCH_EVENTS,
        chunk,
        print: console.log,
      }),
    ]);
  const schema = `bench_${randomBytes(4).toString('hex')}`;
  const pool = createPool(env.DATABASE_URL, schema, 'bench-segmenter', 4);
  const log = createLogger('bench', 'warn');
  try {
    await migrate(pool, schema);
    const store = createSegmentStore({ pool, rules: DEFAULT_RULES, convert: createConverter('CNY', new Map()), log });
    const now = Date.now();

    // 1M people; 1% (profile keys d-…) due a second ago, about to become at_risk.
    await pool.query('TRUNCATE people, event_counts, purchases CASCADE');
    const t0 = Date.now();
    await pool.query(
      `INSERT INTO people (profile_key, first_seen_at, last_active_at, stage, stage_since, stage_evaluated_at, next_review_at)
       SELECT CASE WHEN g % 100 = 0 THEN 'd-' ELSE 'p-' END || g,
              $1::timestamptz - interval '40 days',
              CASE WHEN g % 100 = 0 THEN $1::timestamptz - interval '31 days' ELSE $1::timestamptz - (g % 29) * interval '1 day' END,
              'potential', $1::timestamptz - interval '40 days', $1::timestamptz - interval '1 day',
              CASE WHEN g % 100 = 0 THEN $1::timestamptz - interval '1 second'
                   ELSE $1::timestamptz + (1 + g % 29) * interval '1 day' END
       FROM generate_series(1, $2::int) AS g`,
      [new Date(now).toISOString(), env.BENCH_PEOPLE],
    );
    await pool.query('ANALYZE people');
    console.log(`generated ${env.BENCH_PEOPLE} people in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    /** Makes the people whose key matches `pattern` due again (not timed). */
    const makeDue = (pattern: string) =>
      pool.query(
        `UPDATE people SET stage = 'potential', next_review_at = $1::timestamptz - interval '1 second' WHERE profile_key LIKE $2`,
        [new Date(now).toISOString(), pattern],
      );
    const timedSweep = async () => {
      const started = process.hrtime.bigint();
      const { reviewed } = await store.sweep(now, 1000);
      await pool.query('DELETE FROM lifecycle_outbox');
      return { reviewed, ms: Number(process.hrtime.bigint() - started) / 1e6 };
    };
    const sweeps: number[] = [];
    const tenth: number[] = [];
    for (let run = 0; run < env.BENCH_RUNS; run++) {
      if (run > 0) await makeDue('d-%');
      const one = await timedSweep();
      sweeps.push(one.ms);
      await makeDue('d-%000'); // every tenth of them: 0.1% due
      const small = await timedSweep();
      tenth.push(small.ms);
      console.log(
        `sweep run ${run + 1}: ${one.reviewed} due of ${env.BENCH_PEOPLE} in ${one.ms.toFixed(0)} ms; ${small.reviewed} due in ${small.ms.toFixed(0)} ms`,
      );
    }
    console.log(`\nmedians over ${env.BENCH_RUNS} runs:`);
    for (const [chunk, apply] of applied)
      console.log(
        `${chunk} events a transaction: apply ${Math.round(apply.ours)} events/s, raw COPY ${Math.round(apply.copy)} rows/s, ratio ${apply.ratio.toFixed(3)}, ` +
          `ratio in CPU per event ${apply.cpuRatio === null ? 'n/a (Postgres not local)' : apply.cpuRatio.toFixed(3)}`,
      );
    console.log(
      `sweep of ${env.BENCH_PEOPLE / 100} due among ${env.BENCH_PEOPLE} people ${median(sweeps).toFixed(0)} ms ` +
        `(${Math.round((env.BENCH_PEOPLE / 100 / median(sweeps)) * 1000)} people/s); with 0.1% due ${median(tenth).toFixed(0)} ms`,
    );
  } finally {
    await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await closePool(pool);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
