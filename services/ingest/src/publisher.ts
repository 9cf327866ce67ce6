import { AppError, type Logger } from '@pstream/platform';
import { Partitioners, type Kafka, type Producer } from 'kafkajs';
import { IngestErrors } from './errors';

/** One record for the events topic: the profile key and the normalized message as JSON. */
export type Record = { key: string; value: string };

export type Publisher = {
  /** Resolves once Kafka acknowledged every record with acks=all; rejects (retryable) otherwise. */
  publish(records: Record[]): Promise<void>;
};

export type PublisherOptions = {
  kafka: Kafka;
  topic: string;
  log: Logger;
  /** How long a send may wait for acks=all before the request gets a 503. */
  timeoutMs: number;
  /** After a failed send, refuse at once for this long instead of making every request wait. */
  breakerMs: number;
};

const unavailable = (message: string, cause?: unknown) => new AppError(IngestErrors.KAFKA_UNAVAILABLE, message, { cause, retryable: true });

/**
 * Puts accepted messages on the events topic with acks=all, keyed by the profile key so one
 * person's events keep their order on one partition.
 *
 * Kafka being down must cost a client a fast 503, never a hang and never a 202:
 * - every send races a `timeoutMs` timer;
 * - after a failure a breaker stays open for `breakerMs`, during which requests are refused at
 *   once; the first request after it is the probe that closes it again;
 * - a failed producer is thrown away and a fresh one connects on the next send. kafkajs retries
 *   inside a send and reconnects lazily, but a producer whose send exhausted its retries against
 *   a dead broker can keep stale connection and metadata state; a new producer starts clean, and
 *   the old one's background retries are cut by disconnecting it.
 * A send that timed out may still land later (Kafka got it, the ack was slow): that event was
 * answered 503, the client retries it with the same eventId, and the consumers' dedupe keeps
 * the effect single. Events without a client eventId cannot be recognised on retry — clients
 * that retry should set one (Segment SDKs always send messageId).
 */
export class KafkaPublisher implements Publisher {
  private producer: Producer | undefined;
  private connecting: Promise<Producer> | undefined;
  private openUntil = 0;
  private lastError: string | undefined;
  private stopped = false;
  private readonly log: Logger;

  constructor(private readonly options: PublisherOptions) {
    this.log = options.log.child({ component: 'publisher', topic: options.topic });
  }

  /** Connects eagerly; a broker that is down at start only makes us unready, it does not stop the service. */
  async start(): Promise<void> {
    await this.withTimeout(this.connected()).catch((err: unknown) => {
      this.trip(err);
      this.log.warn({ err }, 'Kafka not reachable at start; will retry on demand');
    });
  }

  async publish(records: Record[]): Promise<void> {
    if (this.stopped) throw unavailable('ingest is shutting down');
    if (Date.now() < this.openUntil) throw unavailable(`Kafka is unavailable (${this.lastError ?? 'recent send failed'}); retry later`);
    let producer: Producer | undefined;
    try {
      await this.withTimeout(
        (async () => {
          producer = await this.connected();
          await producer.send({ topic: this.options.topic, acks: -1, timeout: this.options.timeoutMs, messages: records });
        })(),
      );
      this.openUntil = 0;
      this.lastError = undefined;
    } catch (err) {
      this.trip(err, producer);
      if (err instanceof AppError) throw err;
      throw unavailable(`Kafka refused the events: ${(err as Error).message}`, err);
    }
  }

  /** For /readyz: rejects while the breaker is open, so a load balancer steers traffic away. */
  async check(): Promise<void> {
    if (Date.now() < this.openUntil) throw new Error(`last send failed: ${this.lastError ?? 'unknown'}`);
  }

  /** Safe to call twice. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const p = this.producer;
    this.producer = undefined;
    this.connecting = undefined;
    await p?.disconnect().catch(() => undefined);
  }

  private connected(): Promise<Producer> {
    if (this.producer) return Promise.resolve(this.producer);
    this.connecting ??= (async () => {
      const producer = this.options.kafka.producer({
        allowAutoTopicCreation: false,
        createPartitioner: Partitioners.DefaultPartitioner,
        // Retries inside one send stop within about a second; the request deadline is ours.
        retry: { initialRetryTime: 100, maxRetryTime: 1000, retries: 3 },
      });
      try {
        await producer.connect();
      } catch (err) {
        this.connecting = undefined;
        void producer.disconnect().catch(() => undefined);
        throw err;
      }
      this.producer = producer;
      this.connecting = undefined;
      return producer;
    })();
    return this.connecting;
  }

  private trip(err: unknown, failed?: Producer): void {
    this.openUntil = Date.now() + this.options.breakerMs;
    this.lastError = (err as Error).message;
    if (failed !== undefined && failed === this.producer) {
      this.producer = undefined;
      this.log.warn({ err }, 'send failed; producer replaced');
      void failed.disconnect().catch(() => undefined);
    }
  }

  private async withTimeout<T>(p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        p,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(unavailable(`Kafka did not acknowledge within ${this.options.timeoutMs} ms`)), this.options.timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}
