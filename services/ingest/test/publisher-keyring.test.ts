import { AppError } from '@pstream/platform';
import { Kafka, logLevel } from 'kafkajs';
import pino from 'pino';
import { IngestErrors } from '../src/errors';
import { KafkaPublisher } from '../src/publisher';

describe('KafkaPublisher with a keyring', () => {
  // No broker is needed: a request whose records cannot be sealed never reaches Kafka.
  const kafka = new Kafka({ clientId: 'test', brokers: ['127.0.0.1:1'], logLevel: logLevel.NOTHING });

  it('refuses a request whose person keys cannot be read (503, retryable) without opening the Kafka breaker', async () => {
    const publisher = new KafkaPublisher({
      kafka,
      topic: 'unused',
      log: pino({ level: 'silent' }),
      timeoutMs: 1000,
      breakerMs: 60_000,
      // the error path of a Postgres that went away, which a test cannot cause on the shared server
      keyring: { seal: () => Promise.reject(new Error('connect ECONNREFUSED')) },
    });
    const err = await publisher.publish([{ key: 'u-1', value: '{}' }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({
      code: IngestErrors.KAFKA_UNAVAILABLE,
      retryable: true,
      message: expect.stringMatching(/person keys could not be read or made \(Postgres\): connect ECONNREFUSED/),
    });
    expect(publisher.isOpen()).toBe(false);
    await publisher.stop();
  });
});
