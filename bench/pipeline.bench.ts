/**
 * `pnpm bench:pipeline` — docs/operations.md §7 "Scoring" and "Freshness", printed, never asserted.
 *
 * 1. Apply throughput, several runs, each beside its raw limit measured in the same run
 *    (scorer-throughput.ts): store only in two event orders, end to end with 1 and 2 scorer
 *    processes (BENCH_SCORERS), and `redis-benchmark -P 16` ZINCRBY. Ratio = events/s ÷ ZINCRBY
 *    ops/s; medians over the runs.
 * 2. Freshness: POST /v1/events (202) → the event's tag visible through GET
 *    /v1/profiles/{id}/interests, at half the sustainable end-to-end rate (capped by
 *    BENCH_MAX_RATE), p50/p99 over probe events.
 *    BENCH_FRESHNESS_SECONDS=0 skips it.
 * Everything runs on its own topic, groups and Redis prefix (BENCH_PREFIX, default `bench`, plus a
 * random id), removed at the end.
 */
import { buildApp as buildIngest } from '@pstream/ingest/app';
import { loadConfig as ingestConfig } from '@pstream/ingest/config';
import { KafkaPublisher } from '@pstream/ingest/publisher';
import { migrate } from '@pstream/profile-store';
import { createMetrics, createPool, createRedis, type Pool, type Redis } from '@pstream/platform';
import { buildApp as buildQuery } from '@pstream/query-api/app';
import { loadConfig as queryConfig } from '@pstream/query-api/config';
import { loadConfig, type ScorerConfig } from '@pstream/scorer/config';
import { createScorerConsumer } from '@pstream/scorer/processor';
import { createSandbox, loadDefaultEnv, type Sandbox, silentLog, testId, waitFor } from '@pstream/testkit';
import { clearPrefix, fmt, pct } from './redis-bench';
import { runScorerThroughput } from './scorer-throughput';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const EVENTS = Number(process.env.BENCH_EVENTS ?? 40_000);
const FRESHNESS_SECONDS = Number(process.env.BENCH_FRESHNESS_SECONDS ?? 15);
const MAX_RATE = Number(process.env.BENCH_MAX_RATE ?? Infinity);
/** End to end is measured with each of these numbers of scorer processes (BENCH_SCORERS=1,2). */
const SCORERS = (process.env.BENCH_SCORERS ?? '1,2').split(',').map(Number);
/** First port of the scorer processes' /healthz (one per process). */
const FIRST_PORT = Number(process.env.BENCH_FIRST_PORT ?? 23000);

async function freshness(box: Sandbox, config: ScorerConfig, redis: Redis, sPool: Pool, rate: number) {
  const iCfg = ingestConfig(box.env);
  const publisher = new KafkaPublisher({
    kafka: box.kafka,
    topic: iCfg.EVENTS_TOPIC,
    log: silentLog,
    timeoutMs: iCfg.PRODUCE_TIMEOUT_MS,
    breakerMs: iCfg.KAFKA_BREAKER_MS,
  });
  await publisher.start();
  const ingest = await buildIngest(iCfg, { log: silentLog, publisher, checks: [], metrics: createMetrics('ingest') });
  const qCfg = queryConfig(box.env);
  const pool = createPool(qCfg.DATABASE_URL, qCfg.PG_SCHEMA, 'bench-query');
  const query = await buildQuery(qCfg, {
    log: silentLog,
    redis,
    pool,
    checks: [],
    metrics: createMetrics('query-api'),
  });
  const consumer = createScorerConsumer(config, { kafka: box.kafka, redis, pool: sPool, log: silentLog });
  await consumer.start();
  // warm-up: the group has joined once a first event is visible
  const warm = await ingest.inject({
    method: 'POST',
    url: '/v1/events',
    headers: { 'x-write-key': 'dev-write-key' },
    payload: { type: 'click', userId: 'warm', target: { type: 'product', id: 'w' } },
  });
  if (warm.statusCode !== 202) throw new Error(`ingest answered ${warm.statusCode}: ${warm.body}`);
  await waitFor(
    'warm-up visible',
    async () => ((await redis.exists(`${config.REDIS_PREFIX}:p:{warm}:int`)) ? true : undefined),
    60_000,
  );

  const tickMs = 20;
  const perTick = Math.max(1, Math.round((rate * tickMs) / 1000));
  const latencies: number[] = [];
  const probes: Promise<void>[] = [];
  const end = Date.now() + FRESHNESS_SECONDS * 1000;
  let n = 0;
  let sent = 0;
  const started = Date.now();
  while (Date.now() < end) {
    const tickStart = Date.now();
    const probeId = `probe-${n++}`;
    const events = Array.from({ length: perTick }, (_, i) =>
      i === 0
        ? { type: 'click', userId: probeId, target: { type: 'product', id: 'fresh' }, tags: ['category:fresh'] }
        : {
            type: 'dwell',
            dwellMs: 12_000,
            userId: `load-${(n * perTick + i) % 5000}`,
            target: { type: 'product', id: `l-${i % 50}` },
            tags: ['category:load'],
          },
    );
    probes.push(
      (async () => {
        const res = await ingest.inject({
          method: 'POST',
          url: '/v1/events',
          headers: { 'x-write-key': 'dev-write-key' },
          payload: { events },
        });
        const accepted = performance.now();
        if (res.statusCode !== 202) throw new Error(`ingest answered ${res.statusCode}`);
        sent += events.length;
        for (;;) {
          const r = await query.inject({
            method: 'GET',
            url: `/v1/profiles/${probeId}/interests?limit=5`,
            headers: { authorization: 'Bearer dev-api-token' },
          });
          // 404 until the scorer has seen the probe's person (an unknown profile is not found, docs/api.md)
          if (r.statusCode === 200 && (r.json() as { interests: unknown[] }).interests.length > 0) break;
          if (r.statusCode !== 200 && r.statusCode !== 404)
            throw new Error(`query API answered ${r.statusCode}: ${r.body}`);
          await new Promise((resolve) => setTimeout(resolve, 2));
        }
        latencies.push(performance.now() - accepted);
      })(),
    );
    const wait = tickMs - (Date.now() - tickStart);
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
  await Promise.all(probes);
  const achieved = sent / ((Date.now() - started) / 1000);
  await consumer.stop();
  await ingest.close();
  await query.close();
  await pool.end();
  await publisher.stop();
  return { latencies, achieved };
}

export type ScorerFigures = {
  rows: { store: number; e2e: number; zincrby: number }[];
  scaling?: number;
  freshness?: { achieved: number; latencies: number[] };
};

/**
 * `runs` throughput runs (store, end to end with each of `scorers` processes, ZINCRBY in turn), then
 * freshness unless `withFreshness` is false. `rows[].e2e` is the end-to-end rate with `scorers[0]` processes.
 */
export async function runScorerBench(
  runs = RUNS,
  withFreshness = FRESHNESS_SECONDS > 0,
  scorers = SCORERS,
): Promise<ScorerFigures> {
  loadDefaultEnv();
  const box = await createSandbox(4);
  // one environment for every component, so the query API reads the prefix the scorer writes
  box.env = { ...box.env, REDIS_PREFIX: `${process.env.BENCH_PREFIX ?? 'bench'}:${testId()}`, LOG_LEVEL: 'silent' };
  const config = loadConfig(box.env);
  const redis = createRedis(config, 'bench-scorer');
  // the scorer reads the suppression list of erasures (§5.7) from the schema
  const sPool = createPool(config.DATABASE_URL, config.PG_SCHEMA, 'bench-scorer', 2);
  await migrate(sPool, config.PG_SCHEMA);
  try {
    console.log(
      `scorer benchmark: ${runs} runs of ~${EVENTS} events, ${process.env.KAFKA_BROKERS}, ${config.REDIS_URL}`,
    );
    const { runs: figures, median } = await runScorerThroughput(
      box.kafka,
      redis,
      box.env,
      config,
      { runs, events: EVENTS, scorers, firstPort: FIRST_PORT },
      (line) => console.log(line),
    );
    const e2e = median.e2e[scorers[0]!]!;
    const r = median.ratios;
    console.log(
      `median: store ${fmt(median.store)} ev/s (${r.store!.toFixed(3)}), interleaved ${fmt(median.storeInterleaved)} (${r.storeInterleaved!.toFixed(3)}), ` +
        scorers
          .map(
            (n) =>
              `end to end with ${n} scorer${n > 1 ? 's' : ''} ${fmt(median.e2e[n]!)} (${r[`e2e${n}`]!.toFixed(3)}, ${median.e2eCpu[n]!.toFixed(1)} µs CPU/event)`,
          )
          .join(', ') +
        `, ZINCRBY ${fmt(median.zincrby)} ops/s` +
        scorers
          .filter((n) => n > 1)
          .map((n) => `; ${n} scorers ÷ 1: ${r[`scaling${n}`]?.toFixed(2)}`)
          .join(''),
    );
    const rows = figures.map((f) => ({ store: f.store, e2e: f.e2e[scorers[0]!]!, zincrby: f.zincrby }));
    const scaling = scorers.length > 1 ? r[`scaling${scorers[1]}`] : undefined;

    if (!withFreshness) return { rows, scaling };
    const rate = Math.min(e2e / 2, MAX_RATE);
    const { latencies, achieved } = await freshness(box, config, redis, sPool, rate);
    console.log(
      `freshness at ${fmt(achieved)} ev/s (target ${fmt(rate)} = min(half of ${fmt(e2e)}, BENCH_MAX_RATE ${fmt(MAX_RATE)})), ${latencies.length} probes: p50 ${pct(latencies, 50).toFixed(1)} ms, p99 ${pct(latencies, 99).toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms`,
    );
    return { rows, scaling, freshness: { achieved, latencies } };
  } finally {
    await clearPrefix(redis, config.REDIS_PREFIX);
    redis.disconnect();
    await box.cleanup();
  }
}

if (require.main === module)
  runScorerBench().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
