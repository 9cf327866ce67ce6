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

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger('ingest', config.LOG_LEVEL);
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
