import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createMetrics, createPool, createRedis, migrate } from '@pstream/platform';
import { buildApp as buildQuery } from '@pstream/query-api/src/app';
import { loadConfig as queryConfig } from '@pstream/query-api/src/config';
import { loadConfig as scorerConfig } from '@pstream/scorer/src/config';
import { createScorerConsumer } from '@pstream/scorer/src/processor';
import { loadConfig as segmenterConfig } from '@pstream/segmenter/src/config';
import { createSegmenter } from '@pstream/segmenter/src/processor';
import type { FastifyInstance } from 'fastify';
import { Kafka, logLevel } from 'kafkajs';
import { createSandbox, silentLog, testId, waitFor, type Sandbox } from '../../../test/helpers';
import { buildApp } from '../src/app';
import { loadConfig, type IngestConfig } from '../src/config';
import { KafkaPublisher } from '../src/publisher';
import { kafkaReadiness } from '../src/readiness';

const run = promisify(execFile);
const BROKER_SH = path.resolve(__dirname, '../../../infra/kafka/broker.sh');

/** The ingest app wired as main.ts wires it, on a given Kafka and topic. */
export async function startIngest(kafka: Kafka, env: NodeJS.ProcessEnv): Promise<{ app: FastifyInstance; config: IngestConfig; close: () => Promise<void> }> {
  const config = loadConfig({ LOG_LEVEL: 'silent', ...env, WRITE_KEYS: env.WRITE_KEYS_OVERRIDE ?? 'test-key=web,other-key=app' });
  const publisher = new KafkaPublisher({ kafka, topic: config.EVENTS_TOPIC, log: silentLog, timeoutMs: config.PRODUCE_TIMEOUT_MS, breakerMs: config.KAFKA_BREAKER_MS });
  await publisher.start();
  const readiness = kafkaReadiness(kafka, config.EVENTS_TOPIC, publisher);
  const app = await buildApp(config, { log: silentLog, publisher, checks: readiness.checks, metrics: createMetrics('ingest') });
  return {
    app,
    config,
    async close() {
      await app.close();
      await publisher.stop();
      await readiness.close();
    },
  };
}

/** Every message on `topic`, read from the beginning by a fresh group, once `until` holds. */
export async function readTopic<T = Record<string, unknown>>(kafka: Kafka, topic: string, until: (values: T[]) => boolean, timeoutMs = 30_000): Promise<T[]> {
  const groupId = `test-read-${testId()}`;
  const consumer = kafka.consumer({ groupId });
  const values: T[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void values.push(JSON.parse(message.value!.toString('utf8')) as T) });
  try {
    await waitFor(`messages on ${topic}`, async () => (until(values) ? true : undefined), timeoutMs);
    return values;
  } finally {
    await consumer.disconnect();
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect();
  }
}

/** A port in 20000-29999 (the range COMMON.md gives the helpers' own servers). */
export const randomPort = () => 20_000 + Math.floor(Math.random() * 10_000);

/** A throwaway single-node Kafka on its own ports and data dir, which a test may stop and start. */
export async function throwawayBroker(): Promise<{ brokers: string; kafka: Kafka; start(): Promise<void>; stop(): Promise<void>; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'pstream-ingest-broker-'));
  const port = randomPort();
  const controller = port === 29_999 ? 20_000 : port + 1;
  const brokers = `127.0.0.1:${port}`;
  const start = async () => void (await run('bash', [BROKER_SH, 'start', dir, String(port), String(controller)], { env: { ...process.env, KAFKA_HEAP_OPTS: '-Xmx256m -Xms128m' } }));
  const stop = async () => void (await run('bash', [BROKER_SH, 'stop', dir]));
  return {
    brokers,
    kafka: new Kafka({ clientId: 'test', brokers: [brokers], logLevel: logLevel.NOTHING, retry: { retries: 3, initialRetryTime: 100 } }),
    start,
    stop,
    async remove() {
      await stop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The parts of a query-API profile these tests read. */
export type Profile = {
  userId: string | null;
  anonymousIds: string[];
  traits: Record<string, unknown>;
  interests: { tag: string; score: number }[];
  stats: { events: Record<string, number>; purchases: number } | null;
};

/**
 * Ingest listening on a free port with the scorer, the segmenter and the query API wired
 * in-process on the sandbox (as test/pipeline.int.test.ts does), for tests that drive a real
 * client and read the profile it made. `profile(id, until)` polls the query API until `until` holds.
 */
export async function startPipeline(box: Sandbox, env: NodeJS.ProcessEnv = {}) {
  const closers: (() => Promise<unknown>)[] = [];
  const ingest = await startIngest(box.kafka, { ...box.env, ...env });
  closers.push(() => ingest.close());
  await ingest.app.listen({ host: '127.0.0.1', port: 0 });

  const sCfg = scorerConfig(box.env);
  const redis = createRedis(sCfg.REDIS_URL, 'test-scorer');
  const scorer = createScorerConsumer(sCfg, { kafka: box.kafka, redis, log: silentLog });
  await scorer.start();
  closers.push(() => scorer.stop(), async () => redis.disconnect());

  const gCfg = segmenterConfig(box.env);
  const gPool = createPool(gCfg.DATABASE_URL, gCfg.PG_SCHEMA, 'test-segmenter');
  await migrate(gPool, gCfg.PG_SCHEMA);
  const lifecycleProducer = box.kafka.producer();
  await lifecycleProducer.connect();
  const segmenter = createSegmenter(gCfg, { kafka: box.kafka, pool: gPool, producer: lifecycleProducer, log: silentLog });
  await segmenter.start();
  closers.push(() => segmenter.stop(), () => lifecycleProducer.disconnect(), () => gPool.end());

  const qCfg = queryConfig(box.env);
  const pool = createPool(qCfg.DATABASE_URL, qCfg.PG_SCHEMA, 'test-query');
  const qRedis = createRedis(qCfg.REDIS_URL, 'test-query');
  const query = await buildQuery(qCfg, { log: silentLog, redis: qRedis, pool, checks: [], metrics: createMetrics('query-api') });
  closers.push(() => query.close(), async () => qRedis.disconnect(), () => pool.end());

  const { port } = ingest.app.server.address() as { port: number };
  return {
    ingest,
    query,
    url: `http://127.0.0.1:${port}`,
    async profile(id: string, until: (p: Profile) => boolean, timeoutMs = 30_000): Promise<Profile> {
      return waitFor(`the profile of ${id}`, async () => {
        const res = await query.inject({ method: 'GET', url: `/v1/profiles/${encodeURIComponent(id)}`, headers: { authorization: 'Bearer dev-api-token' } });
        if (res.statusCode !== 200) return undefined;
        const body = res.json() as Profile;
        return until(body) ? body : undefined;
      }, timeoutMs);
    },
    async close() {
      for (const close of closers.reverse()) await close();
    },
  };
}

/**
 * For a describe block driving a real client: a sandbox and a pipeline started before its tests
 * and removed after them. Read them through the returned object once the tests run.
 */
export function usePipeline(): { box: Sandbox; pipeline: Awaited<ReturnType<typeof startPipeline>> } {
  const state = {} as { box: Sandbox; pipeline: Awaited<ReturnType<typeof startPipeline>> };
  beforeAll(async () => {
    state.box = await createSandbox();
    state.pipeline = await startPipeline(state.box);
  });
  afterAll(async () => {
    await state.pipeline?.close();
    await state.box?.cleanup();
  });
  return state;
}
