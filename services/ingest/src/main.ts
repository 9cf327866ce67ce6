import { createKafka, createLogger, createMetrics, handleSignals } from '@pstream/platform';
import { buildApp } from './app';
import { loadConfig } from './config';
import { KafkaPublisher } from './publisher';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger('ingest', config.LOG_LEVEL);
  const kafka = createKafka({ brokers: config.KAFKA_BROKERS, clientId: 'ingest', log });
  const publisher = new KafkaPublisher({ kafka, topic: config.EVENTS_TOPIC, log, timeoutMs: config.PRODUCE_TIMEOUT_MS, breakerMs: config.KAFKA_BREAKER_MS });
  await publisher.start();
  const admin = kafka.admin();
  const app = await buildApp(config, {
    log,
    publisher,
    metrics: createMetrics('ingest'),
    checks: [
      { name: 'kafka', check: () => admin.connect().then(() => admin.fetchTopicMetadata({ topics: [config.EVENTS_TOPIC] })) },
      { name: 'producer', check: () => publisher.check() },
    ],
  });
  handleSignals(log, async () => {
    await app.close();
    await publisher.stop();
    await admin.disconnect();
  });
  await app.listen({ host: config.INGEST_HOST, port: config.INGEST_PORT });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
