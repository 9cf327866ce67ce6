import cluster from 'node:cluster';
import {
  closePool,
  closeRedis,
  createKafka,
  createKeyring,
  createLogger,
  createMetrics,
  createPool,
  handleSignals,
} from '@pstream/platform';
import { buildApp } from './app';
import { loadConfig } from './config';
import { KafkaPublisher } from './publisher';
import { createRateLimitRedis } from './rate-limit';
import { kafkaReadiness } from './readiness';
import { instanceView, runPrimary } from './workers';

/** A worker drains within handleSignals' 10 s; the primary waits a little longer for the last of them. */
const PRIMARY_DEADLINE_MS = 12_000;

async function main(): Promise<void> {
  const config = loadConfig();
  const root = createLogger('ingest', config.LOG_LEVEL);
  if (config.INGEST_WORKERS > 1 && cluster.isPrimary) {
    runPrimary(config.INGEST_WORKERS, root.child({ role: 'primary' }), PRIMARY_DEADLINE_MS);
    return;
  }
  // One process alone, or one of the primary's workers (src/workers.ts): the same ingest either way.
  const log = cluster.isWorker ? root.child({ worker: cluster.worker!.id }) : root;
  const kafka = createKafka({ brokers: config.KAFKA_BROKERS, clientId: 'ingest', log });
  const metrics = createMetrics('ingest');
  // Only the person keys (docs/privacy.md): one lookup per new or uncached person, per batch.
  const pool = createPool(config.DATABASE_URL, config.PG_SCHEMA, 'ingest', 4);
  const keyring = createKeyring(config, pool, metrics);
  const publisher = new KafkaPublisher({
    kafka,
    topic: config.EVENTS_TOPIC,
    log,
    timeoutMs: config.PRODUCE_TIMEOUT_MS,
    breakerMs: config.KAFKA_BREAKER_MS,
    lingerMs: config.PRODUCE_LINGER_MS,
    keyring,
  });
  await publisher.start();
  const readiness = kafkaReadiness(kafka, config.EVENTS_TOPIC, publisher);
  const redis = createRateLimitRedis(config);
  const app = await buildApp(config, {
    log,
    redis,
    publisher,
    metrics,
    checks: readiness.checks,
    instance: cluster.isWorker ? instanceView({ registry: metrics, checks: readiness.checks }) : undefined,
  });
  handleSignals(log, async () => {
    await app.close();
    await publisher.stop();
    await readiness.close();
    await closeRedis(redis);
    await closePool(pool);
  });
  await app.listen({ host: config.INGEST_HOST, port: config.INGEST_PORT });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
