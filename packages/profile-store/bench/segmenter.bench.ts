/**
 * `pnpm bench:segmenter`: figures for BENCHMARKS.md, printed, never asserted.
 *
 * 1. Apply throughput: events/s through the segmenter's apply path (dedupe, identities, facts,
 *    aggregates, stage evaluation, consumer position — one transaction per 500-event chunk), fed
 *    directly rather than fetched from Kafka, so the figure is the Postgres side alone.
 * 2. Sweep: 1M people generated with one set-based INSERT, 1% of them due; the time the sweep
 *    takes to re-evaluate (and move to at_risk) the due ones, and the same with 0.1% due — the
 *    ratio shows the cost following the number due, not the number of people.
 *
 * Everything lives in a schema of its own, dropped at the end. BENCH_RUNS (default 3),
 * BENCH_EVENTS (default 40000), BENCH_PEOPLE (default 1000000).
 */
import { randomBytes } from 'node:crypto';
import type { TopicMessage } from '@pstream/events';
import { DAY_MS, DEFAULT_RULES } from '@pstream/lifecycle';
import { closePool, commonEnv, createLogger, createPool, parseEnv } from '@pstream/platform';
import { z } from 'zod';
import { createConverter, createSegmentStore, migrate } from '../src';

const env = parseEnv(
  z.object({
    DATABASE_URL: commonEnv.DATABASE_URL,
    BENCH_RUNS: z.coerce.number().int().min(1).default(3),
    BENCH_EVENTS: z.coerce.number().int().min(1000).default(40_000),
    BENCH_PEOPLE: z.coerce.number().int().min(1000).default(1_000_000),
  }),
  process.env,
);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const TYPES = ['click', 'click', 'click', 'dwell', 'like', 'comment', 'share', 'favorite', 'purchase', 'follow'];

function events(run: number, n: number, now: number): TopicMessage[] {
  return Array.from({ length: n }, (_, i) => {
    const userId = `r${run}-u${i % Math.max(1, Math.floor(n / 8))}`; // ~8 events per person
    const type = TYPES[i % TYPES.length]!;
    const at = new Date(now - (i % 160) * DAY_MS - (i % 997) * 1000).toISOString();
    return {
      v: 1, kind: 'event', eventId: `r${run}-e${i}`, source: 'bench', type, userId, profileKey: userId, occurredAt: at, receivedAt: at,
      target: { type: 'product', id: `p-${i % 500}` }, tags: [`category:c${i % 20}`, `brand:b${i % 50}`],
      ...(type === 'dwell' && { dwellMs: 20_000 }),
      ...(type === 'purchase' && { amount: 10 + (i % 300), currency: 'CNY' }),
    } as TopicMessage;
  });
}

/** One apply run (`run` keeps its people and event ids apart): `n` events in 500-event chunks, a transaction each; events/s. */
export async function applyRate(store: ReturnType<typeof createSegmentStore>, run: number, n: number, now: number): Promise<number> {
  const batch = events(run, n, now);
  const started = process.hrtime.bigint();
  for (let i = 0; i < batch.length; i += 500) {
    const chunk = batch.slice(i, i + 500).map((value, j) => ({ value, offset: String(i + j) }));
    await store.apply(chunk, { groupId: 'bench', topic: `run-${run}`, partition: 0, lastOffset: String(i + chunk.length - 1) }, now);
  }
  return batch.length / (Number(process.hrtime.bigint() - started) / 1e9);
}

async function main(): Promise<void> {
  const schema = `bench_${randomBytes(4).toString('hex')}`;
  const pool = createPool(env.DATABASE_URL, schema, 'bench-segmenter', 4);
  const log = createLogger('bench', 'warn');
  try {
    await migrate(pool, schema);
    const store = createSegmentStore({ pool, rules: DEFAULT_RULES, convert: createConverter('CNY', new Map()), log });
    const now = Date.now();

    const rates: number[] = [];
    for (let run = 0; run < env.BENCH_RUNS; run++) {
      const rate = await applyRate(store, run, env.BENCH_EVENTS, now);
      rates.push(rate);
      console.log(`apply run ${run + 1}: ${env.BENCH_EVENTS} events = ${Math.round(rate)} events/s`);
    }

    // 1M people; 1% (profile keys d-…) due a second ago, about to become at_risk.
    await pool.query('TRUNCATE people CASCADE');
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
      console.log(`sweep run ${run + 1}: ${one.reviewed} due of ${env.BENCH_PEOPLE} in ${one.ms.toFixed(0)} ms; ${small.reviewed} due in ${small.ms.toFixed(0)} ms`);
    }
    console.log(
      `\nmedians over ${env.BENCH_RUNS} runs: apply ${Math.round(median(rates))} events/s; ` +
        `sweep of ${env.BENCH_PEOPLE / 100} due among ${env.BENCH_PEOPLE} people ${median(sweeps).toFixed(0)} ms ` +
        `(${Math.round((env.BENCH_PEOPLE / 100 / median(sweeps)) * 1000)} people/s); with 0.1% due ${median(tenth).toFixed(0)} ms`,
    );
  } finally {
    await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await closePool(pool);
  }
}

if (require.main === module)
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
