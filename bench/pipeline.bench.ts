/**
 * `pnpm bench:pipeline` — docs/operations.md §7 "Scoring" and "Freshness", printed, never asserted.
 *
 * 1. Apply throughput, several runs, each beside its raw limit measured in the same run:
 *    - store: prepared events applied by the per-event Lua script, pipelined 500 per round trip
 *      (what the consumer does per chunk), one client, in order;
 *    - end to end: a pre-filled topic consumed by a real scorer consumer into Redis (first applied
 *      event → last), i.e. including Kafka fetch, JSON parse, zod validation, catalog lookup;
 *    - raw: `redis-benchmark -P 16` pipelined ZINCRBY on a throwaway key.
 *    Ratio = events/s ÷ ZINCRBY ops/s; medians over the runs.
 * 2. Freshness: POST /v1/events (202) → the event's tag visible through GET
 *    /v1/profiles/{id}/interests, at half the sustainable end-to-end rate (capped by
 *    BENCH_MAX_RATE), p50/p99 over probe events.
 * Everything runs on its own topic, groups and Redis prefix, removed at the end.
 */
import { execFileSync } from 'node:child_process';
import type { ProfileEvent } from '@pstream/events';
import { normalizeEvent } from '@pstream/ingest/dialects';
import { buildApp as buildIngest } from '@pstream/ingest/app';
import { loadConfig as ingestConfig } from '@pstream/ingest/config';
import { KafkaPublisher } from '@pstream/ingest/publisher';
import { createInterestStore } from '@pstream/interest-store';
import { migrate } from '@pstream/profile-store';
import { createMetrics, createPool, createRedis, scanKeys, type Pool, type Redis } from '@pstream/platform';
import { buildApp as buildQuery } from '@pstream/query-api/app';
import { loadConfig as queryConfig } from '@pstream/query-api/config';
import { loadDefaultEnv } from '../test/env';
import { createSandbox, silentLog, testId, waitFor, type Sandbox } from '../test/helpers';
import { loadConfig, storeOptions, type ScorerConfig } from '@pstream/scorer/config';
import { createScorerConsumer } from '@pstream/scorer/processor';
import { prepareEvent } from '@pstream/scorer/score';
import { appliedCount, generateStream, produceRaw } from '../services/scorer/test/support';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const EVENTS = Number(process.env.BENCH_EVENTS ?? 40_000);
const FRESHNESS_SECONDS = Number(process.env.BENCH_FRESHNESS_SECONDS ?? 15);
const MAX_RATE = Number(process.env.BENCH_MAX_RATE ?? Infinity);
const DAY = 86_400_000;

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
export const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
export const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/** Removes every key under `prefix`, scanning again until a pass finds none. */
export async function clearPrefix(redis: Redis, prefix: string): Promise<void> {
  for (let found = 1; found > 0; ) {
    found = 0;
    for await (const batch of scanKeys(redis, `${prefix}:*`)) {
      found += batch.length;
      await Promise.all(batch.map((key) => redis.unlink(key))); // one key per call: keys of a Cluster sit in many slots
    }
  }
}

function zincrbyOpsPerSec(url: URL, key: string, n: number, cluster: boolean): number {
  const args = ['-h', url.hostname, '-p', url.port || '6379', ...(cluster ? ['--cluster'] : []), '-n', String(n), '-P', '16', '-r', '100000', '-q', 'zincrby', key, '1', 'member:__rand_int__'];
  const out = execFileSync('redis-benchmark', args, { encoding: 'utf8' });
  const m = /([\d.]+) requests per second/.exec(out);
  if (!m) throw new Error(`unexpected redis-benchmark output: ${out}`);
  return Number(m[1]);
}

function stream(seed: number): { messages: ProfileEvent[]; people: string[] } {
  const now = Date.now();
  const perPerson = 80;
  const { events, people } = generateStream(seed, Math.ceil(EVENTS / perPerson), now - 30 * DAY, now - 3_600_000, perPerson);
  const messages = events.map((e) => {
    const r = normalizeEvent(e, { source: 'bench', now });
    if (!r.ok) throw new Error('invalid generated event');
    return r.value;
  });
  return { messages, people };
}

async function throughput(box: Sandbox, config: ScorerConfig, redis: Redis, sPool: Pool, runs: number) {
  const url = new URL(config.REDIS_URL);
  const rows: { store: number; e2e: number; zincrby: number }[] = [];
  for (let run = 1; run <= runs; run++) {
    const { messages, people } = stream(run);
    const unique = new Set(messages.map((m) => m.eventId)).size;

    // store: the Lua apply, pipelined per chunk of 500
    const prefix = `${config.REDIS_PREFIX}-store${run}`;
    const store = createInterestStore(redis, prefix, storeOptions(config));
    const prepared = messages.map((m) => prepareEvent(m, storeOptions(config).scoring.decay, new Map()));
    const t0 = performance.now();
    for (let i = 0; i < prepared.length; i += 500) await store.apply(prepared.slice(i, i + 500));
    const storeRate = prepared.length / ((performance.now() - t0) / 1000);
    await clearPrefix(redis, prefix);

    // end to end: a real consumer on a pre-filled topic
    const topic = `${config.EVENTS_TOPIC}-run${run}`;
    const admin = box.kafka.admin();
    await admin.connect();
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 4 }] });
    await produceRaw(box.kafka, topic, messages.map((m) => ({ key: m.profileKey, value: JSON.stringify(m) })));
    const e2ePrefix = `${config.REDIS_PREFIX}-e2e${run}`;
    const groupId = `${config.SCORER_GROUP}-run${run}`;
    const consumer = createScorerConsumer({ ...config, EVENTS_TOPIC: topic, REDIS_PREFIX: e2ePrefix }, { kafka: box.kafka, redis, pool: sPool, log: silentLog }, { groupId });
    await consumer.start();
    const first = await waitFor('first applied', async () => ((await appliedCount(redis, e2ePrefix, people)) > 0 ? performance.now() : undefined), 60_000, 5);
    const firstCount = await appliedCount(redis, e2ePrefix, people);
    const last = await waitFor('all applied', async () => ((await appliedCount(redis, e2ePrefix, people)) === unique ? performance.now() : undefined), 120_000, 20);
    const e2eRate = (unique - firstCount) / ((last - first) / 1000);
    await consumer.stop();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect();
    await clearPrefix(redis, e2ePrefix);

    // raw limit, same run
    const key = `${config.REDIS_PREFIX}-raw:zincrby`;
    const zincrby = zincrbyOpsPerSec(url, key, 200_000, config.REDIS_CLUSTER_NODES.length > 0);
    await redis.unlink(key);

    rows.push({ store: storeRate, e2e: e2eRate, zincrby });
    console.log(`run ${run}: ${messages.length} events | store ${fmt(storeRate)} ev/s | end-to-end ${fmt(e2eRate)} ev/s | redis-benchmark ZINCRBY -P 16 ${fmt(zincrby)} ops/s | ratios ${(storeRate / zincrby).toFixed(3)} / ${(e2eRate / zincrby).toFixed(3)}`);
  }
  return rows;
}

async function freshness(box: Sandbox, config: ScorerConfig, redis: Redis, sPool: Pool, rate: number) {
  const iCfg = ingestConfig(box.env);
  const publisher = new KafkaPublisher({ kafka: box.kafka, topic: iCfg.EVENTS_TOPIC, log: silentLog, timeoutMs: iCfg.PRODUCE_TIMEOUT_MS, breakerMs: iCfg.KAFKA_BREAKER_MS });
  await publisher.start();
  const ingest = await buildIngest(iCfg, { log: silentLog, publisher, checks: [], metrics: createMetrics('ingest') });
  const qCfg = queryConfig(box.env);
  const pool = createPool(qCfg.DATABASE_URL, qCfg.PG_SCHEMA, 'bench-query');
  const query = await buildQuery(qCfg, { log: silentLog, redis, pool, checks: [], metrics: createMetrics('query-api') });
  const consumer = createScorerConsumer(config, { kafka: box.kafka, redis, pool: sPool, log: silentLog });
  await consumer.start();
  // warm-up: the group has joined once a first event is visible
  const warm = await ingest.inject({ method: 'POST', url: '/v1/events', headers: { 'x-write-key': 'dev-write-key' }, payload: { type: 'click', userId: 'warm', target: { type: 'product', id: 'w' } } });
  if (warm.statusCode !== 202) throw new Error(`ingest answered ${warm.statusCode}: ${warm.body}`);
  await waitFor('warm-up visible', async () => ((await redis.exists(`${config.REDIS_PREFIX}:p:{warm}:int`)) ? true : undefined), 60_000);

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
        : { type: 'dwell', dwellMs: 12_000, userId: `load-${(n * perTick + i) % 5000}`, target: { type: 'product', id: `l-${i % 50}` }, tags: ['category:load'] },
    );
    probes.push(
      (async () => {
        const res = await ingest.inject({ method: 'POST', url: '/v1/events', headers: { 'x-write-key': 'dev-write-key' }, payload: { events } });
        const accepted = performance.now();
        if (res.statusCode !== 202) throw new Error(`ingest answered ${res.statusCode}`);
        sent += events.length;
        for (;;) {
          const r = await query.inject({ method: 'GET', url: `/v1/profiles/${probeId}/interests?limit=5`, headers: { authorization: 'Bearer dev-api-token' } });
          if ((r.json() as { interests: unknown[] }).interests.length > 0) break;
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

export type ScorerFigures = { rows: { store: number; e2e: number; zincrby: number }[]; freshness?: { achieved: number; latencies: number[] } };

/** `runs` throughput runs (store, end to end and ZINCRBY in turn), then freshness unless `withFreshness` is false. */
export async function runScorerBench(runs = RUNS, withFreshness = true): Promise<ScorerFigures> {
  loadDefaultEnv();
  const box = await createSandbox(4);
  // one environment for every component, so the query API reads the prefix the scorer writes
  box.env = { ...box.env, REDIS_PREFIX: `bench:${testId()}`, LOG_LEVEL: 'silent' };
  const config = loadConfig(box.env);
  const redis = createRedis(config, 'bench-scorer');
  // the scorer reads the suppression list of erasures (§5.7) from the schema
  const sPool = createPool(config.DATABASE_URL, config.PG_SCHEMA, 'bench-scorer', 2);
  await migrate(sPool, config.PG_SCHEMA);
  try {
    console.log(`scorer benchmark: ${runs} runs of ~${EVENTS} events, ${process.env.KAFKA_BROKERS}, ${config.REDIS_URL}`);
    const rows = await throughput(box, config, redis, sPool, runs);
    const store = median(rows.map((r) => r.store));
    const e2e = median(rows.map((r) => r.e2e));
    const z = median(rows.map((r) => r.zincrby));
    console.log(`median: store ${fmt(store)} ev/s, end-to-end ${fmt(e2e)} ev/s, ZINCRBY ${fmt(z)} ops/s; median ratios store ${median(rows.map((r) => r.store / r.zincrby)).toFixed(3)}, end-to-end ${median(rows.map((r) => r.e2e / r.zincrby)).toFixed(3)}`);

    if (!withFreshness) return { rows };
    const rate = Math.min(e2e / 2, MAX_RATE);
    const { latencies, achieved } = await freshness(box, config, redis, sPool, rate);
    console.log(`freshness at ${fmt(achieved)} ev/s (target ${fmt(rate)} = min(half of ${fmt(e2e)}, BENCH_MAX_RATE ${fmt(MAX_RATE)})), ${latencies.length} probes: p50 ${pct(latencies, 50).toFixed(1)} ms, p99 ${pct(latencies, 99).toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms`);
    return { rows, freshness: { achieved, latencies } };
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
