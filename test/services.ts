import { buildApp as buildIngest } from '@pstream/ingest/app';
import { loadConfig as ingestConfig } from '@pstream/ingest/config';
import { KafkaPublisher } from '@pstream/ingest/publisher';
import { createMetrics, createPool, createRedis, type Registry } from '@pstream/platform';
import { migrate } from '@pstream/profile-store';
import { buildApp as buildQuery } from '@pstream/query-api/app';
import { loadConfig as queryConfig } from '@pstream/query-api/config';
import { LagSampler } from '@pstream/query-api/lag';
import { buildApp as buildScorerOps } from '@pstream/scorer/app';
import { loadConfig as scorerConfig } from '@pstream/scorer/config';
import { createScorerConsumer } from '@pstream/scorer/processor';
import { buildApp as buildSegmenterOps } from '@pstream/segmenter/app';
import { loadConfig as segmenterConfig } from '@pstream/segmenter/config';
import { createSegmenter } from '@pstream/segmenter/processor';
import type { FastifyInstance } from 'fastify';
import { silentLog, type Sandbox } from './helpers';

export const SERVICE_NAMES = ['ingest', 'query-api', 'scorer', 'segmenter'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

/** The four services with their own metrics registries and HTTP apps (/metrics, /healthz, /readyz), wired as the mains wire them. */
export type Services = {
  apps: Record<ServiceName, FastifyInstance>;
  registries: Record<ServiceName, Registry>;
  /** `host:port` of each app, once `listen` started them on free ports. */
  addresses: Partial<Record<ServiceName, string>>;
  close(): Promise<void>;
};

export type ServicesOptions = {
  /** Listen on free ports of 127.0.0.1 (for a scraper); else the apps answer `inject` only. */
  listen?: boolean;
  /** The scorer's Redis, when it must differ from the sandbox's (a proxy the test can cut). */
  scorerRedisUrl?: string;
  /** How often query-api's lag sampler samples, and its Burrow window. */
  lagIntervalMs?: number;
  lagWindow?: number;
};

/**
 * The whole platform in-process on a sandbox as four services — ingest, scorer, segmenter and
 * query-api with its lag sampler — each with its own registry and ops routes, as their mains
 * build them. For the tests of what operators see: /metrics and a real Prometheus scraping it.
 */
export async function startServices(box: Sandbox, env: NodeJS.ProcessEnv, options: ServicesOptions = {}): Promise<Services> {
  const closers: (() => Promise<unknown>)[] = [];
  const registries = Object.fromEntries(SERVICE_NAMES.map((name) => [name, createMetrics(name)])) as Record<ServiceName, Registry>;
  try {
    const iCfg = ingestConfig(env);
    const publisher = new KafkaPublisher({ kafka: box.kafka, topic: iCfg.EVENTS_TOPIC, log: silentLog, timeoutMs: iCfg.PRODUCE_TIMEOUT_MS, breakerMs: iCfg.KAFKA_BREAKER_MS });
    await publisher.start();
    closers.push(() => publisher.stop());
    const ingest = await buildIngest(iCfg, { log: silentLog, publisher, checks: [{ name: 'kafka', check: () => publisher.check() }], metrics: registries.ingest });
    closers.push(() => ingest.close());

    const gCfg = segmenterConfig(env);
    const pool = createPool(gCfg.DATABASE_URL, gCfg.PG_SCHEMA, 'test-services');
    await migrate(pool, gCfg.PG_SCHEMA);
    closers.push(() => pool.end());

    // the scorer reads the suppression list of erasures from the same schema
    const sCfg = scorerConfig({ ...env, ...(options.scorerRedisUrl && { REDIS_URL: options.scorerRedisUrl }) });
    const redis = createRedis(sCfg, 'test-services-scorer');
    closers.push(async () => redis.disconnect());
    const scorer = createScorerConsumer(sCfg, { kafka: box.kafka, redis, pool, log: silentLog, metrics: registries.scorer });
    await scorer.start();
    closers.push(() => scorer.stop());
    const scorerApp = await buildScorerOps({ log: silentLog, checks: [], metrics: registries.scorer });
    closers.push(() => scorerApp.close());

    const producer = box.kafka.producer();
    await producer.connect();
    closers.push(() => producer.disconnect());
    const segmenter = createSegmenter(gCfg, { kafka: box.kafka, pool, producer, log: silentLog, metrics: registries.segmenter });
    await segmenter.start();
    closers.push(() => segmenter.stop());
    const segmenterApp = await buildSegmenterOps({ log: silentLog, checks: [], metrics: registries.segmenter });
    closers.push(() => segmenterApp.close());

    const qCfg = queryConfig(env);
    const sampler = new LagSampler({
      kafka: box.kafka,
      log: silentLog,
      groups: [env.SCORER_GROUP!, env.SEGMENTER_GROUP!],
      dlqTopic: env.DLQ_TOPIC!,
      intervalMs: options.lagIntervalMs ?? 300,
      window: options.lagWindow ?? 5,
      metrics: registries['query-api'],
    });
    sampler.start();
    closers.push(() => sampler.stop());
    const qRedis = createRedis(qCfg, 'test-services-query');
    closers.push(async () => qRedis.disconnect());
    const query = await buildQuery(qCfg, { log: silentLog, redis: qRedis, pool, checks: [], metrics: registries['query-api'], lag: sampler });
    closers.push(() => query.close());

    const apps: Record<ServiceName, FastifyInstance> = { ingest, 'query-api': query, scorer: scorerApp, segmenter: segmenterApp };
    const addresses: Services['addresses'] = {};
    if (options.listen) {
      for (const name of SERVICE_NAMES) {
        await apps[name].listen({ host: '127.0.0.1', port: 0 });
        addresses[name] = `127.0.0.1:${(apps[name].server.address() as { port: number }).port}`;
      }
    }
    return {
      apps,
      registries,
      addresses,
      async close() {
        for (const close of closers.reverse()) await close().catch(() => undefined);
      },
    };
  } catch (err) {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    throw err;
  }
}
