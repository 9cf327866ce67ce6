import { DEFAULT_RULES } from '@pstream/lifecycle';
import { closePool, createKafka, createLogger, createMetrics, createPool, handleSignals, migrate } from '@pstream/platform';
import { buildApp } from './app';
import { loadConfig } from './config';
import { createSegmenterConsumer } from './processor';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger('segmenter', config.LOG_LEVEL);
  const pool = createPool(config.DATABASE_URL, config.PG_SCHEMA, 'segmenter');
  const applied = await migrate(pool, config.PG_SCHEMA);
  if (applied.length > 0) log.info({ applied }, 'migrations applied');
  const kafka = createKafka({ brokers: config.KAFKA_BROKERS, clientId: 'segmenter', log });
  const producer = kafka.producer();
  await producer.connect();
  const consumer = createSegmenterConsumer(config, { kafka, pool, producer, log, rules: DEFAULT_RULES });
  const app = await buildApp({
    log,
    metrics: createMetrics('segmenter'),
    checks: [
      { name: 'postgres', check: () => pool.query('SELECT 1') },
      { name: 'consumer', check: async () => { if (!consumer.isRunning()) throw new Error('consumer not running'); } },
    ],
  });
  handleSignals(log, async () => {
    await consumer.stop();
    await producer.disconnect();
    await app.close();
    await closePool(pool);
  });
  await consumer.start();
  await app.listen({ host: config.SEGMENTER_HOST, port: config.SEGMENTER_PORT });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
