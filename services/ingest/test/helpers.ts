import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { closeRedis, createMetrics } from '@pstream/platform';
import type { FastifyInstance } from 'fastify';
import { Kafka, logLevel } from 'kafkajs';
import { createSandbox, silentLog, testId, waitFor, type Sandbox } from '../../../test/helpers';
import { buildApp } from '../src/app';
import { loadConfig, type IngestConfig } from '../src/config';
import { KafkaPublisher } from '../src/publisher';
import { createRateLimitRedis } from '../src/rate-limit';
import { kafkaReadiness } from '../src/readiness';

const run = promisify(execFile);
const BROKER_SH = path.resolve(__dirname, '../../../infra/kafka/broker.sh');

/** The ingest app wired as main.ts wires it, on a given Kafka and topic. */
export async function startIngest(kafka: Kafka, env: NodeJS.ProcessEnv): Promise<{ app: FastifyInstance; config: IngestConfig; close: () => Promise<void> }> {
  const config = loadConfig({ LOG_LEVEL: 'silent', REDIS_PREFIX: `test:${testId()}`, ...env, WRITE_KEYS: env.WRITE_KEYS_OVERRIDE ?? 'test-key=web,other-key=app' });
  const publisher = new KafkaPublisher({ kafka, topic: config.EVENTS_TOPIC, log: silentLog, timeoutMs: config.PRODUCE_TIMEOUT_MS, breakerMs: config.KAFKA_BREAKER_MS });
  await publisher.start();
  const readiness = kafkaReadiness(kafka, config.EVENTS_TOPIC, publisher);
  const redis = createRateLimitRedis(config);
  // Tests count requests from the first one: wait until the limit's Redis is connected (or has
  // failed, or is silent for a second), so a slow connect cannot send the first checks to the fallback.
  await new Promise<void>((resolve) => {
    if (redis.status === 'ready') return resolve();
    const timer = setTimeout(resolve, 1000);
    const done = () => (clearTimeout(timer), resolve());
    redis.once('ready', done);
    redis.once('error', done);
  });
  const app = await buildApp(config, { log: silentLog, publisher, checks: readiness.checks, metrics: createMetrics('ingest'), redis });
  return {
    app,
    config,
    async close() {
      await app.close();
      await publisher.stop();
      await readiness.close();
      await closeRedis(redis);
    },
  };
}

/**
 * For a describe block posting to ingest: a sandbox and an ingest app (startIngest) made before
 * its tests and removed after them. Read them through the returned object once the tests run.
 */
export function useIngest(): { box: Sandbox; app: FastifyInstance } {
  const state = {} as { box: Sandbox; app: FastifyInstance; ingest?: Awaited<ReturnType<typeof startIngest>> };
  beforeAll(async () => {
    state.box = await createSandbox();
    state.ingest = await startIngest(state.box.kafka, state.box.env);
    state.app = state.ingest.app;
  });
  afterAll(async () => {
    await state.ingest?.close();
    await state.box?.cleanup();
  });
  return state;
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
