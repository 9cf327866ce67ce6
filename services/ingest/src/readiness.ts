import type { ReadinessCheck } from '@pstream/platform';
import type { Kafka } from 'kafkajs';
import type { KafkaPublisher } from './publisher';

/**
 * What /readyz asks: Kafka answers a metadata request for the events topic (through an admin
 * client that reconnects on demand), and the publisher's last send did not fail. Either one
 * failing takes the instance out of a load balancer's rotation until Kafka is back.
 */
export function kafkaReadiness(
  kafka: Kafka,
  topic: string,
  publisher: KafkaPublisher,
): { checks: ReadinessCheck[]; close: () => Promise<void> } {
  const admin = kafka.admin({ retry: { retries: 1, initialRetryTime: 100, maxRetryTime: 500 } });
  return {
    checks: [
      { name: 'kafka', check: () => admin.connect().then(() => admin.fetchTopicMetadata({ topics: [topic] })) },
      { name: 'producer', check: () => publisher.check() },
    ],
    close: () => admin.disconnect(),
  };
}
