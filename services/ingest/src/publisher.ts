import { AppError, withTimeout, type Keyring, type Logger } from '@pstream/platform';
import { Partitioners, type Kafka, type Producer } from 'kafkajs';
import { IngestErrors } from './errors';

/**
 * One record for the events topic: the profile key, the normalized message as JSON and every
 * real id it names (sealed on the way out under all their keys: docs/privacy.md).
 */
export type Record = { key: string; value: string | Buffer; names?: readonly string[] };

export type Publisher = {
  /** Resolves once Kafka acknowledged every record with acks=all; rejects (retryable) otherwise. */
  publish(records: Record[]): Promise<void>;
  /** True while sends are refused at once after a failure (for /metrics). */
  isOpen?(): boolean;
};

export type PublisherOptions = {
  kafka: Kafka;
  topic: string;
  log: Logger;
  /** How long a send may wait for acks=all before the request gets a 503. */
  timeoutMs: number;
  /** After a failed send, refuse at once for this long instead of making every request wait. */
  breakerMs: number;
  /** Sends under way at once; requests arriving meanwhile share the next send (default 2). */
  maxInFlight?: number;
  /** Seals every record for its person (docs/privacy.md); without it records go out in clear (tests of other things). */
  keyring?: Pick<Keyring, 'seal'>;
};

/** Records of several requests waiting for the next send, and the promise they all wait on. */
type Pending = { records: Record[]; promise: Promise<void>; resolve: () => void; reject: (err: unknown) => void };
/** A shared send never grows past this many records; a full one goes out at once. */
const MAX_COALESCED = 5000;

function deferred(): Pending {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A caller that timed out no longer listens; the rejection must not become "unhandled".
  promise.catch(() => undefined);
  return { records: [], promise, resolve, reject };
}

const unavailable = (message: string, cause?: unknown) => new AppError(IngestErrors.KAFKA_UNAVAILABLE, message, { cause, retryable: true });

/**
 * Puts accepted messages on the events topic with acks=all, keyed by the profile key so one
 * person's events keep their order on one partition.
 *
 * Kafka being down must cost a client a fast 503, never a hang and never a 202:
 * - every send races a `timeoutMs` timer;
 * - after a failure a breaker stays open for `breakerMs`, during which requests are refused at
 *   once; the first request after it is the probe that closes it again;
 * - a producer whose send failed (kafkajs gave up after its own retries) is thrown away and a
 *   fresh one connects on the next send. kafkajs 2.2.4 reconnects lazily inside `send`, and in
 *   our broker stop/restart test it recovered even without this (checked by disabling it); we
 *   replace it anyway because it is cheap and does not depend on kafkajs clearing every piece of
 *   connection and metadata state after, say, a broker coming back on another address. A send
 *   that merely timed out does not replace the producer, so one slow ack does not cut the sends
 *   of other requests.
 * Under load, requests that arrive while sends are under way share the next send (see
 * `enqueue`); each still gets its 202 only once the send holding its records was acknowledged.
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
  private inFlight = 0;
  private pending: Pending | undefined;
  private readonly maxInFlight: number;
  private readonly log: Logger;

  constructor(private readonly options: PublisherOptions) {
    this.log = options.log.child({ component: 'publisher', topic: options.topic });
    this.maxInFlight = options.maxInFlight ?? 2;
  }

  /** Connects eagerly; a broker that is down at start only makes us unready, it does not stop the service. */
  async start(): Promise<void> {
    await this.bounded(this.connected()).catch((err: unknown) => {
      this.trip(err);
      this.log.warn({ err }, 'Kafka not reachable at start; will retry on demand');
    });
  }

  async publish(records: Record[]): Promise<void> {
    if (this.stopped) throw unavailable('ingest is shutting down');
    if (Date.now() < this.openUntil) throw unavailable(`Kafka is unavailable (${this.lastError ?? 'recent send failed'}); retry later`);
    const sealed = await this.seal(records);
    try {
      await this.bounded(this.enqueue(sealed));
      this.openUntil = 0;
      this.lastError = undefined;
    } catch (err) {
      this.trip(err);
      if (err instanceof AppError) throw err;
      throw unavailable(`Kafka refused the events: ${(err as Error).message}`, err);
    }
  }

  /** The one place records are sealed; keys that cannot be read or made refuse the request (503) without tripping the Kafka breaker. */
  private async seal(records: Record[]): Promise<Record[]> {
    const keyring = this.options.keyring;
    if (!keyring) return records;
    const ms = this.options.timeoutMs;
    const sealed = keyring.seal(records).catch((err: unknown) => {
      throw unavailable(`person keys could not be read or made (Postgres): ${(err as Error).message}`, err);
    });
    return withTimeout(sealed, ms, () => unavailable(`person keys (Postgres) were not read within ${ms} ms`));
  }

  /**
   * Requests that arrive while `maxInFlight` sends are under way share the next send, so under
   * load Kafka gets fewer, larger produce requests (less work per event for the broker and for
   * kafkajs) and each request still waits for the acks of its own records.
   */
  private enqueue(records: Record[]): Promise<void> {
    if (this.inFlight < this.maxInFlight) return this.sendNow(records);
    const next = (this.pending ??= deferred());
    next.records.push(...records);
    if (next.records.length >= MAX_COALESCED) {
      this.pending = undefined;
      this.sendNow(next.records).then(next.resolve, next.reject);
    }
    return next.promise;
  }

  private async sendNow(records: Record[]): Promise<void> {
    this.inFlight += 1;
    let producer: Producer | undefined;
    try {
      producer = await this.connected();
      await producer.send({ topic: this.options.topic, acks: -1, timeout: this.options.timeoutMs, messages: records });
    } catch (err) {
      this.trip(err, producer);
      throw err;
    } finally {
      this.inFlight -= 1;
      const next = this.pending;
      if (next !== undefined) {
        this.pending = undefined;
        this.sendNow(next.records).then(next.resolve, next.reject);
      }
    }
  }

  isOpen(): boolean {
    return Date.now() < this.openUntil;
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
        // Idempotent: a send retried after a lost answer (a leader broker killed mid-request)
        // is written once, in order; one request in flight per broker keeps kafkajs's sequence
        // numbers safe. Consumers still dedupe by event id, which also covers a client's retry.
        idempotent: true,
        maxInFlightRequests: 1,
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

  /** Bounds a Kafka call by the produce timeout. */
  private bounded<T>(p: Promise<T>): Promise<T> {
    const ms = this.options.timeoutMs;
    return withTimeout(p, ms, () => unavailable(`Kafka did not acknowledge within ${ms} ms`));
  }

}
