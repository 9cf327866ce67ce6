import { closePool, closeRedis, createKafka, createLogger, createPool, createRedis } from '@pstream/platform';
import { loadConfig } from './config';
import { progressPrinter, rebuild } from './rebuild';

/** `pnpm scorer:rebuild`: clears the scorer's Redis state and replays the events topic (see rebuild.ts). */
async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger('scorer-rebuild', config.LOG_LEVEL);
  const kafka = createKafka({ brokers: config.KAFKA_BROKERS, clientId: 'scorer-rebuild', log });
  const redis = createRedis(config, 'scorer-rebuild');
  const pool = createPool(config.DATABASE_URL, config.PG_SCHEMA, 'scorer-rebuild', 2);
  const started = Date.now();
  try {
    const result = await rebuild(config, { kafka, redis, pool, log }, progressPrinter());
    log.info(
      { events: result.total, partitions: result.partitions, seconds: (Date.now() - started) / 1000 },
      'rebuild done',
    );
  } finally {
    await closeRedis(redis);
    await closePool(pool);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
