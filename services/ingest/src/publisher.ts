import { AppError, BoundedMap, withTimeout, type Keyring, type Logger } from '@pstream/platform';
import { Partitioners, type ICustomPartitioner, type Kafka, type Producer } from 'kafkajs';
import { IngestErrors } from './errors';

/**
 * One record for the events topic: the profile key, the normalized message as JSON and every
 * real id it names (sealed on the way out under all their keys: docs/privacy.md).
 */
export type Record = { key: string; value: string | Buffer; names?: readonly string[] };

export type Publisher = {
  /**
   * Resolves once Kafka acknowledged every record with acks=all; rejects with `ING_TOO_LARGE` when
   * the records are too large to send (a 413: the request's own fault), else retryable.
   */
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
  /**
   * How long (ms) a request's records wait for other requests' to share a send even when a send could start at once
   * (PRODUCE_LINGER_MS; without it here, 0: they go at once). Fewer, larger sends cost Kafka and kafkajs less per
   * event.
   */
  lingerMs?: number;
  /**
   * Seals every record for its person (docs/privacy.md); without it records go out in clear (tests of other things).
   */
  keyring?: Pick<Keyring, 'seal'>;
};

/** One request's records in a shared send, and how to answer that request. */
type Part = { records: Record[]; resolve: () => void; reject: (err: unknown) => void };
/** The requests waiting for the next send, and how many records (and UTF-16 units of them) they hold together. */
type Pending = { parts: Part[]; count: number; units: number };
/** A shared send never grows past this many records; a full one goes out at once. */
const MAX_COALESCED = 5000;

const unavailable = (message: string, cause?: unknown) =>
  new AppError(IngestErrors.KAFKA_UNAVAILABLE, message, { cause, retryable: true });

/**
 * What one request may put on Kafka: its records' keys and values together. One person's records
 * share a partition, so a request's records may all go into one record batch, which the broker
 * refuses past its `message.max.bytes` (1 MB by default): this keeps every request under it.
 */
export const MAX_REQUEST_BYTES = 768 * 1024;

/** The UTF-16 length of records' keys and values: bytes for ASCII, a third of the bytes at worst. */
function unitsOf(records: readonly Record[]): number {
  let units = 0;
  for (const r of records) units += r.key.length + r.value.length;
  return units;
}

/**
 * The size of a request's records when over MAX_REQUEST_BYTES, else undefined (exact bytes counted only when they could
 * be over).
 */
function oversized(records: readonly Record[]): number | undefined {
  const units = unitsOf(records);
  // A UTF-16 unit is at most 3 bytes of UTF-8.
  if (units * 3 <= MAX_REQUEST_BYTES) return undefined;
  let bytes = 0;
  for (const r of records) bytes += Buffer.byteLength(r.key) + Buffer.byteLength(r.value);
  return bytes > MAX_REQUEST_BYTES ? bytes : undefined;
}

/** How many keys' partitions `memoPartitioner` remembers (people active lately; about 100 bytes each). */
const PARTITION_MEMO_SIZE = 100_000;

/**
 * kafkajs's default partitioner (murmur2 of the key, as Java's client), remembering each key's
 * partition: its murmur2 is pure JavaScript on 64-bit `Long` objects, ~10 µs for our 64-character
 * keys (the person's subject), and a person sends many events. The same key still goes to the same
 * partition; a change in the partition count starts the memo over.
 */
export const memoPartitioner: ICustomPartitioner = () => {
  const base = Partitioners.DefaultPartitioner();
  const memo = new BoundedMap<string, number>(PARTITION_MEMO_SIZE);
  let partitions = -1;
  return (args) => {
    const { message, partitionMetadata } = args;
    const key = message.key;
    if (typeof key !== 'string' || (message.partition !== undefined && message.partition !== null)) return base(args);
    if (partitionMetadata.length !== partitions) {
      memo.clear();
      partitions = partitionMetadata.length;
    }
    let partition = memo.get(key);
    if (partition === undefined) {
      partition = base(args);
      memo.set(key, partition);
    }
    return partition;
  };
};

/** A send failed on a producer that a size refusal had already replaced: worth one more try on the new one. */
class StaleProducer extends Error {
  constructor(readonly original: unknown) {
    super((original as Error).message, { cause: original });
  }
}

/** The broker refused a record (batch) as larger than the topic allows: the records' fault, not Kafka's. */
const refusedAsTooLarge = (err: unknown) => {
  const type = (err as { type?: unknown }).type;
  return type === 'MESSAGE_TOO_LARGE' || type === 'RECORD_LIST_TOO_LARGE';
};

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
 * `enqueue`); each still gets its 202 only once the send holding its records was acknowledged,
 * and one request's records that the broker refuses as too large fail that request alone (a 413;
 * the breaker stays closed and the producer is kept: nothing is wrong with Kafka).
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
  /** Sends the pending requests when their linger is up (set only while some wait with a send slot free). */
  private lingerTimer: NodeJS.Timeout | undefined;
  /** Producers replaced after a size refusal: a send of theirs that fails is retried on the new one. */
  private readonly droppedForSize = new WeakSet<Producer>();
  /** Sends under way per producer: a producer is disconnected only once none is (see `retire`). */
  private readonly sending = new Map<Producer, number>();
  /** Replaced (or stopped) producers that still had sends under way: disconnected when the last settles. */
  private readonly retiring = new Map<Producer, () => void>();
  private readonly retired: Promise<void>[] = [];
  private readonly maxInFlight: number;
  private readonly lingerMs: number;
  private readonly log: Logger;

  constructor(private readonly options: PublisherOptions) {
    this.log = options.log.child({ component: 'publisher', topic: options.topic });
    this.maxInFlight = options.maxInFlight ?? 2;
    this.lingerMs = options.lingerMs ?? 0;
  }

  /** Connects eagerly; a broker that is down at start only makes us unready, it does not stop the service. */
  async start(): Promise<void> {
    await this.bounded(this.connected()).catch((err: unknown) => {
      this.trip(err);
      this.log.warn({ err }, 'Kafka not reachable at start; will retry on demand');
    });
  }

  async publish(records: Record[]): Promise<void> {
    const bytes = oversized(records);
    if (bytes !== undefined) {
      throw new AppError(
        IngestErrors.TOO_LARGE,
        `the accepted events come to ${Math.ceil(bytes / 1024)} KB on Kafka, over the ${MAX_REQUEST_BYTES / 1024} KB one request may produce; send them in smaller requests`,
      );
    }
    if (this.stopped) throw unavailable('ingest is shutting down');
    if (Date.now() < this.openUntil)
      throw unavailable(`Kafka is unavailable (${this.lastError ?? 'recent send failed'}); retry later`);
    const sealed = await this.seal(records);
    try {
      await this.bounded(this.enqueue(sealed));
      this.openUntil = 0;
      this.lastError = undefined;
    } catch (err) {
      // A request whose records the broker refuses as too large gets its own 413; Kafka is fine.
      if (refusedAsTooLarge(err))
        throw new AppError(
          IngestErrors.TOO_LARGE,
          `Kafka refused this request's events as too large for the topic (${(err as Error).message}); send fewer or smaller events per request`,
          { cause: err },
        );
      this.trip(err);
      if (err instanceof AppError) throw err;
      throw unavailable(`Kafka refused the events: ${(err as Error).message}`, err);
    }
  }

  /**
   * The one place records are sealed; keys that cannot be read or made refuse the request (503) without tripping the
   * Kafka breaker.
   */
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
   * kafkajs) and each request still waits for the acks of its own records. With a linger, a
   * request that finds a send slot free waits up to `lingerMs` for company before its send starts.
   */
  private enqueue(records: Record[]): Promise<void> {
    if (this.inFlight < this.maxInFlight && this.lingerMs === 0) return this.sendNow(records);
    const units = unitsOf(records);
    // A shared send stays under what one request may produce, so no partition's batch in it
    // can pass the broker's limit because requests were put together.
    if (this.pending !== undefined && this.pending.units + units > MAX_REQUEST_BYTES) this.flush();
    const promise = new Promise<void>((resolve, reject) => {
      const next = (this.pending ??= { parts: [], count: 0, units: 0 });
      next.parts.push({ records, resolve, reject });
      next.count += records.length;
      next.units += units;
      if (next.count >= MAX_COALESCED) this.flush();
    });
    if (this.pending !== undefined && this.lingerTimer === undefined && this.inFlight < this.maxInFlight)
      this.lingerTimer = setTimeout(() => {
        this.lingerTimer = undefined;
        // With every slot taken, the pending requests go when a send settles (sendNow).
        if (this.inFlight < this.maxInFlight) this.flush();
      }, this.lingerMs);
    // A caller that timed out no longer listens; the rejection must not become "unhandled".
    promise.catch(() => undefined);
    return promise;
  }

  /** Sends the waiting requests now. */
  private flush(): void {
    clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
    const next = this.pending;
    this.pending = undefined;
    if (next !== undefined) void this.sendParts(next.parts);
  }

  /**
   * One send for several requests, each answered by it. When the broker refuses it as too large,
   * the requests are sent again one by one, so only a request that is too large on its own fails
   * (records of the shared send that were written are written again: same event ids, which the
   * consumers' dedupe keeps single).
   */
  private async sendParts(parts: Part[]): Promise<void> {
    try {
      await this.sendNow(parts.flatMap((part) => part.records));
      for (const part of parts) part.resolve();
    } catch (err) {
      if (parts.length > 1 && refusedAsTooLarge(err)) await Promise.all(parts.map((part) => this.sendParts([part])));
      else for (const part of parts) part.reject(err);
    }
  }

  /**
   * One send, retried once on a fresh producer when its producer was dropped after a size refusal
   * while it waited (that producer's sequence numbers are no longer the broker's, see `send`).
   */
  private async sendNow(records: Record[]): Promise<void> {
    this.inFlight += 1;
    try {
      await this.send(records).catch((err: unknown) =>
        err instanceof StaleProducer ? this.send(records) : Promise.reject(err),
      );
    } finally {
      this.inFlight -= 1;
      this.flush();
    }
  }

  private async send(records: Record[]): Promise<void> {
    let producer: Producer | undefined;
    try {
      // The current producer without a tick in between, so the send is counted on it (`sending`) before anything
      // else runs: stop() right after a flush then waits for the send instead of disconnecting under it.
      producer = this.producer ?? (await this.connected());
      await this.sendOn(producer, records);
    } catch (err) {
      if (refusedAsTooLarge(err)) {
        // Not Kafka's failure: no breaker. But kafkajs rolled back the sequence numbers of every
        // partition of the failed produce request, written or not, so the idempotent producer's
        // next sends would be refused as out of order: a fresh producer (a new producer id) takes over.
        this.drop(producer!, err);
      } else if (producer !== undefined && this.droppedForSize.has(producer)) {
        throw new StaleProducer(err);
      } else {
        this.trip(err, producer);
      }
      throw err;
    }
  }

  private async sendOn(producer: Producer, records: Record[]): Promise<void> {
    this.sending.set(producer, (this.sending.get(producer) ?? 0) + 1);
    try {
      await producer.send({ topic: this.options.topic, acks: -1, timeout: this.options.timeoutMs, messages: records });
    } finally {
      const left = this.sending.get(producer)! - 1;
      if (left > 0) this.sending.set(producer, left);
      else {
        this.sending.delete(producer);
        this.retiring.get(producer)?.();
      }
    }
  }

  /**
   * Disconnects a producer that is no longer used, once no send of its is under way: kafkajs
   * retries a send inside `send`, and a retry after `disconnect` reconnects the producer's broker
   * sockets, which then nobody closes (they kept the process — and Jest — alive after a size refusal).
   */
  private retire(producer: Producer): void {
    if (this.retiring.has(producer)) return;
    const done = new Promise<void>((resolve) => {
      const disconnect = () => {
        this.retiring.delete(producer);
        void producer
          .disconnect()
          .catch(() => undefined)
          .then(resolve);
      };
      if (this.sending.has(producer)) this.retiring.set(producer, disconnect);
      else disconnect();
    });
    this.retired.push(done);
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
    // Requests lingering for company go now, on the producer still here, not after it is gone.
    this.flush();
    this.stopped = true;
    const p = this.producer;
    const pending = this.connecting;
    this.producer = undefined;
    this.connecting = undefined;
    if (p !== undefined) this.retire(p);
    // A connect still in flight disconnects its producer itself once it sees `stopped` (connected()).
    await pending?.catch(() => undefined);
    // Every producer disconnected, once its sends under way settled (kafkajs bounds them by the produce timeout and its
    // retries).
    await Promise.all(this.retired);
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
        createPartitioner: memoPartitioner,
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
      if (this.stopped) {
        // stop() ran while this producer was connecting: it must not outlive the publisher.
        await producer.disconnect().catch(() => undefined);
        throw new Error('the publisher was stopped');
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
    if (failed !== undefined) this.drop(failed, err);
  }

  /** Replaces `failed` when it is still the current producer: the next send connects a fresh one. */
  private drop(failed: Producer, err: unknown): void {
    if (failed !== this.producer) return;
    this.producer = undefined;
    if (refusedAsTooLarge(err)) this.droppedForSize.add(failed);
    this.log.warn({ err }, 'send failed; producer replaced');
    this.retire(failed);
  }

  /** Bounds a Kafka call by the produce timeout. */
  private bounded<T>(p: Promise<T>): Promise<T> {
    const ms = this.options.timeoutMs;
    return withTimeout(p, ms, () => unavailable(`Kafka did not acknowledge within ${ms} ms`));
  }
}
