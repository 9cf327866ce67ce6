import { closeRedis, createMetrics } from '@pstream/platform';
import { buildApp } from '@pstream/ingest/app';
import { loadConfig, type IngestConfig } from '@pstream/ingest/config';
import { KafkaPublisher } from '@pstream/ingest/publisher';
import { createRateLimitRedis } from '@pstream/ingest/rate-limit';
import { kafkaReadiness } from '@pstream/ingest/readiness';
import type { FastifyInstance } from 'fastify';
import type { Kafka } from 'kafkajs';
import { createSandbox, silentLog, testId, type Sandbox } from '../index';

/** The ingest app wired as main.ts wires it, on a given Kafka and topic. */
export async function startIngest(
  kafka: Kafka,
  env: NodeJS.ProcessEnv,
): Promise<{ app: FastifyInstance; config: IngestConfig; close: () => Promise<void> }> {
  const config = loadConfig({
    LOG_LEVEL: 'silent',
    REDIS_PREFIX: `test:${testId()}`,
    ...env,
    WRITE_KEYS: env.WRITE_KEYS_OVERRIDE ?? 'test-key=web,other-key=app',
  });
  const publisher = new KafkaPublisher({
    kafka,
    topic: config.EVENTS_TOPIC,
    log: silentLog,
    timeoutMs: config.PRODUCE_TIMEOUT_MS,
    breakerMs: config.KAFKA_BREAKER_MS,
    lingerMs: config.PRODUCE_LINGER_MS,
  });
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
  const app = await buildApp(config, {
    log: silentLog,
    publisher,
    checks: readiness.checks,
    metrics: createMetrics('ingest'),
    redis,
  });
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
