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
import { migrate, pingPostgres } from '@pstream/profile-store';
import { buildApp } from './app';
import { loadConfig } from './config';
import { createSegmenter } from './processor';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger('segmenter', config.LOG_LEVEL);
  const pool = createPool(config.DATABASE_URL, config.PG_SCHEMA, 'segmenter');
  const applied = await migrate(pool, config.PG_SCHEMA);
  if (applied.length > 0) log.info({ applied }, 'migrations applied');
  const kafka = createKafka({ brokers: config.KAFKA_BROKERS, clientId: 'segmenter', log });
  const producer = kafka.producer();
  await producer.connect();
  const metrics = createMetrics('segmenter');
  const redis = createRedis(config, 'segmenter');
  const segmenter = createSegmenter(config, { kafka, pool, producer, log, metrics, redis });
  const app = await buildApp({
    log,
    metrics,
    checks: [
      { name: 'postgres', check: () => pingPostgres(pool) },
      { name: 'redis', check: () => redis.ping() },
      consumerCheck(segmenter),
    ],
  });
  handleSignals(log, async () => {
    await segmenter.stop();
    await producer.disconnect();
    await app.close();
    await closeRedis(redis);
    await closePool(pool);
  });
  await segmenter.start();
  await app.listen({ host: config.SEGMENTER_HOST, port: config.SEGMENTER_PORT });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
