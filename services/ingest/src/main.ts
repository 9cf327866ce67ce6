import { createKafka, createLogger, createMetrics, handleSignals } from '@pstream/platform';
import { buildApp } from './app';
import { loadConfig } from './config';
import { createPublisher } from './publisher';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger('ingest', config.LOG_LEVEL);
  const kafka = createKafka({ brokers: config.KAFKA_BROKERS, clientId: 'ingest', log });
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const admin = kafka.admin();
  await admin.connect();
  const app = await buildApp(config, {
    log,
    publisher: createPublisher(producer, config.EVENTS_TOPIC, config.PRODUCE_TIMEOUT_MS),
    metrics: createMetrics('ingest'),
    checks: [{ name: 'kafka', check: () => admin.fetchTopicMetadata({ topics: [config.EVENTS_TOPIC] }) }],
  });
  handleSignals(log, async () => {
    await app.close();
    await producer.disconnect();
    await admin.disconnect();
  });
  await app.listen({ host: config.INGEST_HOST, port: config.INGEST_PORT });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
