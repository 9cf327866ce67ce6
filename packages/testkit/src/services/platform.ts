import { buildApp as buildIngest } from '@pstream/ingest/app';
import { loadConfig as ingestConfig } from '@pstream/ingest/config';
import { KafkaPublisher } from '@pstream/ingest/publisher';
import { createKeyring, createMetrics, createPool, createRedis, type Pool, type Redis } from '@pstream/platform';
import { migrate } from '@pstream/profile-store';
import { buildApp as buildQuery } from '@pstream/query-api/app';
import { loadConfig as queryConfig } from '@pstream/query-api/config';
import { loadConfig as scorerConfig } from '@pstream/scorer/config';
import { createScorerConsumer } from '@pstream/scorer/processor';
import { loadConfig as segmenterConfig } from '@pstream/segmenter/config';
import { createSegmenter } from '@pstream/segmenter/processor';
import type { FastifyInstance } from 'fastify';
import { silentLog, type Sandbox } from '../index';

/**
 * The whole platform in-process on a sandbox: ingest → Kafka → scorer + segmenter → query API, wired as the mains wire
 * it.
 */
export type Platform = {
  ingest: FastifyInstance;
  query: FastifyInstance;
  redis: Redis;
  pool: Pool;
  close(): Promise<void>;
};

export async function startPlatform(box: Sandbox, env: NodeJS.ProcessEnv = box.env): Promise<Platform> {
  const closers: (() => Promise<unknown>)[] = [];
  const gCfg = segmenterConfig(env);
  const pool = createPool(gCfg.DATABASE_URL, gCfg.PG_SCHEMA, 'test-segmenter');
  await migrate(pool, gCfg.PG_SCHEMA);
  closers.push(() => pool.end());

  const iCfg = ingestConfig(env);
  const keyring = createKeyring(iCfg, pool);
  const publisher = new KafkaPublisher({
    kafka: box.kafka,
    topic: iCfg.EVENTS_TOPIC,
    log: silentLog,
    timeoutMs: iCfg.PRODUCE_TIMEOUT_MS,
    breakerMs: iCfg.KAFKA_BREAKER_MS,
    lingerMs: iCfg.PRODUCE_LINGER_MS,
    keyring,
  });
  await publisher.start();
  closers.push(() => publisher.stop());
  const ingest = await buildIngest(iCfg, { log: silentLog, publisher, checks: [], metrics: createMetrics('ingest') });
  closers.push(() => ingest.close());

  // the scorer reads the suppression list of erasures from the same schema
  const sCfg = scorerConfig(env);
  const redis = createRedis(sCfg, 'test-scorer');
  const scorer = createScorerConsumer(sCfg, { kafka: box.kafka, redis, pool, log: silentLog });
  await scorer.start();
  closers.push(
    () => scorer.stop(),
    async () => redis.disconnect(),
  );

  const producer = box.kafka.producer();
  await producer.connect();
  const segmenter = createSegmenter(gCfg, { kafka: box.kafka, pool, producer, log: silentLog });
  await segmenter.start();
  closers.push(
    () => segmenter.stop(),
    () => producer.disconnect(),
  );

  const { app: query, close: closeQuery } = await startQueryApi(env, 'test-query');
  closers.push(closeQuery);
  return {
    ingest,
    query,
    redis,
    pool,
    async close() {
      for (const close of closers.reverse()) await close();
    },
  };
}

/**
 * The query API in-process as its main wires it, with a Redis client and a pool of its own named `name` (the Redis
 * client's name tells its connections apart in CLIENT LIST). `close` closes the app, then the client and the pool.
 */
export async function startQueryApi(
  env: NodeJS.ProcessEnv,
  name: string,
): Promise<{ app: FastifyInstance; redis: Redis; pool: Pool; close(): Promise<void> }> {
  const cfg = queryConfig(env);
  const redis = createRedis(cfg, name);
  const pool = createPool(cfg.DATABASE_URL, cfg.PG_SCHEMA, name);
  const app = await buildQuery(cfg, { log: silentLog, redis, pool, checks: [], metrics: createMetrics('query-api') });
  return {
    app,
    redis,
    pool,
    async close() {
      await app.close();
      redis.disconnect();
      await pool.end();
    },
  };
}
