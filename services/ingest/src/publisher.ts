import { AppError } from '@pstream/platform';
import type { ProfileEvent } from '@pstream/events';
import type { Producer } from 'kafkajs';
import { IngestErrors } from './errors';

export type Publisher = {
  /** Resolves once Kafka acknowledged every event with acks=all; rejects (retryable) otherwise. */
  publish(events: ProfileEvent[]): Promise<void>;
};

/**
 * Puts accepted events on the events topic, keyed by the profile key so one person's events keep
 * their order on one partition. A send that Kafka has not acknowledged within `timeoutMs` fails
 * fast with a retryable error, which the route turns into 503 + Retry-After.
 */
export function createPublisher(producer: Producer, topic: string, timeoutMs: number): Publisher {
  return {
    async publish(events) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new AppError(IngestErrors.KAFKA_UNAVAILABLE, `Kafka did not acknowledge within ${timeoutMs} ms`, { retryable: true })),
          timeoutMs,
        );
      });
      try {
        await Promise.race([
          producer.send({
            topic,
            acks: -1,
            timeout: timeoutMs,
            messages: events.map((e) => ({ key: e.profileKey, value: JSON.stringify(e) })),
          }),
          timeout,
        ]);
      } catch (err) {
        if (err instanceof AppError) throw err;
        throw new AppError(IngestErrors.KAFKA_UNAVAILABLE, `Kafka refused the events: ${(err as Error).message}`, {
          cause: err,
          retryable: true,
        });
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
