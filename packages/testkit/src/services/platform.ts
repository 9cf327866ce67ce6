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

  const qCfg = queryConfig(env);
  const qRedis = createRedis(qCfg, 'test-query');
  const qPool = createPool(qCfg.DATABASE_URL, qCfg.PG_SCHEMA, 'test-query');
  const query = await buildQuery(qCfg, {
    log: silentLog,
    redis: qRedis,
    pool: qPool,
    checks: [],
    metrics: createMetrics('query-api'),
  });
  closers.push(
    () => query.close(),
    async () => qRedis.disconnect(),
    () => qPool.end(),
  );
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
