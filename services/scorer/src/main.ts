import {
  closePool,
  closeRedis,
  consumerCheck,
  createKafka,
  createLogger,
  createMetrics,
  createPool,
  createRedis,
  handleSignals,
} from '@pstream/platform';
import { pingPostgres } from '@pstream/profile-store';
import { buildApp } from './app';
import { loadConfig } from './config';
import { createScorerConsumer } from './processor';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger('scorer', config.LOG_LEVEL);
  const kafka = createKafka({ brokers: config.KAFKA_BROKERS, clientId: 'scorer', log });
  const redis = createRedis(config, 'scorer');
  // Read-only: the suppression list of erasures (docs/api.md §5.7), once per chunk.
  const pool = createPool(config.DATABASE_URL, config.PG_SCHEMA, 'scorer', 2);
  const metrics = createMetrics('scorer');
  const consumer = createScorerConsumer(config, { kafka, redis, pool, log, metrics });
  const app = await buildApp({
    log,
    metrics,
    checks: [
      { name: 'redis', check: () => redis.ping() },
      { name: 'postgres', check: () => pingPostgres(pool) },
      consumerCheck(consumer),
    ],
  });
  handleSignals(log, async () => {
    await consumer.stop();
    await app.close();
    await closeRedis(redis);
    await closePool(pool);
  });
  await consumer.start();
  await app.listen({ host: config.SCORER_HOST, port: config.SCORER_PORT });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
