import type { Admin, Consumer, EachBatchPayload, Kafka, KafkaMessage, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { z } from 'zod';
import { describeIssues } from './errors';
import { envInt } from './config';
import { consumerMetrics, PartitionProgress, type ConsumerMetrics, type DeadLetterKind } from './consumer-metrics';
import { AppError } from './errors';
import { ChunkGatherer, type GatherTicket } from './gather';
import type { Keyring, Opened } from './keyring';
import type { Registry } from './metrics';

/** A message that passed validation, with where it came from. */
export type Consumed<T> = { value: T; partition: number; offset: string };

/** One partition's chunk as `apply` gets it, for `applyTogether`. */
export type ChunkPart<T> = { messages: Consumed<T>[]; partition: number; chunk: { topic: string; lastOffset: string } };

/** A message a consumer could not use, as written to the DLQ topic (docs/events.md §3.4). */
export type DeadLetter = {
  reason: string;
  consumerGroup: string;
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: string | null;
  failedAt: string;
};

export const ConsumerErrors = {
  /** A stored consumer position lies beyond the topic's end: the topic was recreated or its data wiped. */
  POSITION_BEYOND_END: 'PLT_POSITION_BEYOND_END',
} as const;

/**
 * Marks an error as caused by the data of the message(s) being applied: retrying can never
 * help, so the batch consumer isolates the message and dead-letters it. Throw it (or have
 * `classify` answer 'poison') only when the input is at fault; anything else is retried.
 */
export class PoisonError extends AppError {
  constructor(code: string, message: string, cause?: unknown) {
    super(code, message, { cause, retryable: false });
    this.name = 'PoisonError';
  }
}

/** How a consumer reads an apply failure: the message's fault, or the world's (retry). */
export type FailureKind = 'poison' | 'transient';

/** Settings of the consume loop, shared by the scorer and the segmenter. */
export const consumerEnv = {
  /**
   * A partition whose position has not moved for this long while a chunk is retried is
   * reported stalled: /readyz answers 503 naming it and an error is logged once a minute.
   */
  CONSUMER_STALL_SECONDS: envInt(60, 1),
  /** Longest wait between two attempts at a chunk that failed transiently (capped exponential backoff). */
  CONSUMER_RETRY_MAX_MS: envInt(30_000, 10),
  /**
   * Most messages one apply call gets: one scorer pipeline, one segmenter transaction. A fetched
   * partition batch larger than this is applied in chunks (docs/operations.md "Throughput and freshness").
   */
  CONSUMER_CHUNK_SIZE: envInt(500, 1),
  /**
   * A fetch waits until the broker has this many bytes for it (or CONSUMER_FETCH_MAX_WAIT_MS passed):
   * larger partition batches, so fewer fetches, applies, transactions and commits per event, for up to
   * that wait. 32 KB is ~70 sealed events: at a few thousand events/s a fetch finds that much at once.
   */
  CONSUMER_FETCH_MIN_BYTES: envInt(32_768, 1),
  /**
   * Longest a fetch waits for CONSUMER_FETCH_MIN_BYTES (also how often an idle consumer fetches): at most
   * this is added to an event's freshness when traffic is light (docs/operations.md "Throughput and freshness").
   */
  CONSUMER_FETCH_MAX_WAIT_MS: envInt(20, 0),
  /**
   * After a fetch that found nothing, the next one waits up to this long for any byte (minBytes 1): an
   * idle consumer fetches twice a second instead of fifty times, and the first event after a quiet spell
   * is answered as soon as it is written. 0 turns this off (every fetch waits as under traffic).
   */
  CONSUMER_FETCH_IDLE_WAIT_MS: envInt(500, 0),
  /**
   * 1: fetch the next batches while the current ones are applied (one fetch ahead; a fetched batch is used
   * only if its partition's position is still where it was fetched from). 2: only after a fetch that left
   * data behind (a backlog). 0: fetch, apply, commit in turn.
   */
  CONSUMER_FETCH_AHEAD: z.coerce.number().int().min(0).max(2).default(1),
} as const;
export type ConsumerEnv = {
  CONSUMER_STALL_SECONDS: number;
  CONSUMER_RETRY_MAX_MS: number;
  CONSUMER_CHUNK_SIZE: number;
  CONSUMER_FETCH_MIN_BYTES: number;
  CONSUMER_FETCH_MAX_WAIT_MS: number;
  CONSUMER_FETCH_IDLE_WAIT_MS: number;
  CONSUMER_FETCH_AHEAD: number;
};

/** The batching settings of `consumerEnv` as `BatchConsumer` options. */
export function consumerTuning(
  config: ConsumerEnv,
): Pick<
  BatchConsumerOptions<z.ZodType>,
  'chunkSize' | 'fetchMinBytes' | 'fetchMaxWaitMs' | 'fetchIdleWaitMs' | 'fetchAhead'
> {
  return {
    chunkSize: config.CONSUMER_CHUNK_SIZE,
    fetchMinBytes: config.CONSUMER_FETCH_MIN_BYTES,
    fetchMaxWaitMs: config.CONSUMER_FETCH_MAX_WAIT_MS,
    fetchIdleWaitMs: config.CONSUMER_FETCH_IDLE_WAIT_MS || undefined,
    fetchAhead: config.CONSUMER_FETCH_AHEAD === 2 ? 'behind' : config.CONSUMER_FETCH_AHEAD !== 0,
  };
}

/** The setting of a consumer that keeps its positions outside Kafka (`storedOffsets`: the segmenter). */
export const storedPositionEnv = {
  /**
   * How long a stored position beyond the topic's end is re-checked before it is refused: a new
   * partition leader can report an end briefly lower than the old one's. 0 refuses at once.
   */
  CONSUMER_POSITION_GRACE_SECONDS: envInt(30, 0),
} as const;

/** A partition whose position has not advanced: the offset retried, and since when. */
export type StalledPartition = { topic: string; partition: number; offset: string; since: number };

export type BatchConsumerOptions<S extends z.ZodType> = {
  kafka: Kafka;
  log: Logger;
  groupId: string;
  topic: string;
  dlqTopic: string;
  schema: S;
  /**
   * A compiled check of `schema` for the common shape (e.g. `fastTopicMessage` of @pstream/events): it
   * answers exactly what `schema.parse` would, or undefined for anything else, and then `schema` decides
   * and words the reason. Optional; it saves the zod run per message on the hot path.
   */
  fastParse?: (json: unknown) => z.output<S> | undefined;
  /**
   * Applies a batch of valid messages; must make their effects durable before resolving, and
   * must be idempotent per message (a chunk is re-applied after a failure, and halves of it
   * when a poison message is searched for). `chunk` names the topic and the last offset the
   * call covers (dead-lettered messages included; `messages` may be empty then), for a
   * consumer that stores its position together with its effects.
   */
  apply: (
    messages: Consumed<z.output<S>>[],
    partition: number,
    chunk: { topic: string; lastOffset: string },
  ) => Promise<void | { duplicates?: number }>;
  /**
   * Applies the chunks of several partitions in one call, with the same duties as `apply` for each
   * (one segmenter transaction storing every partition's position). Optional: with it, the chunks in
   * hand at the same moment — the partition batches of one fetch, when `partitionsConcurrently` covers
   * the partitions fetched — go to one call, one call at a time (gather.ts). A call that fails with a
   * poison error is not repeated together: each of its chunks is applied again alone through `apply`,
   * where a poison message is isolated as without it; a transient failure retries each chunk as ever.
   */
  applyTogether?: (parts: ChunkPart<z.output<S>>[]) => Promise<void | { duplicates?: number }>;
  /** Poison (isolate and dead-letter) or transient (retry); default `classifyFailure`. */
  classify?: (err: unknown) => FailureKind;
  /**
   * Positions kept outside Kafka (e.g. in Postgres with the effects): on each assignment the
   * consumer seeks every assigned partition that has one. Optional; without it Kafka's
   * committed offsets are used. `start()` refuses to run when one lies beyond the topic's end
   * for longer than `positionGraceMs`.
   */
  storedOffsets?: (topic: string, partitions: number[]) => Promise<Map<number, string>>;
  /**
   * How long a stored position beyond the topic's end is tolerated while the end offsets are
   * re-read with backoff (default 30 s): right after a leader change the new leader's high
   * watermark can lag the old one's, so a valid position looks beyond the end for a moment.
   * Only a position still beyond the end after this is refused.
   */
  positionGraceMs?: number;
  /**
   * Opens sealed messages (keyring.ts, docs/privacy.md). A message of an erased person (its key
   * shredded) is skipped and counted; a sealed message's dead letter is sealed for its person
   * again. Without it, only plaintext messages are readable.
   */
  keyring?: Pick<Keyring, 'open'>;
  /** Read the topic from the beginning when the group has no committed offset. */
  fromBeginning?: boolean;
  /** How many messages one `apply` call gets at most; heartbeats are sent between chunks (default 500). */
  chunkSize?: number;
  /** A fetch waits for this many bytes (default 1: answer as soon as there is anything)… */
  fetchMinBytes?: number;
  /** …or this long, whichever comes first (default 5 000 ms, kafkajs's). The services pass `consumerEnv`'s. */
  fetchMaxWaitMs?: number;
  /**
   * After a fetch that found nothing, the next waits up to this long for any byte (minBytes 1) instead of
   * `fetchMinBytes` / `fetchMaxWaitMs` (default: off). The services pass `consumerEnv`'s.
   */
  fetchIdleWaitMs?: number;
  /**
   * Fetch the next batches while the current ones are applied (default true): one fetch ahead, from where
   * the batches in hand end; a batch fetched ahead is applied only if, once those are done, the group
   * generation is the same, its partition is still assigned, not paused and not being sought, and the
   * partition's position is where it was fetched from (kafkajs patch, `fetcher.js`). Otherwise refetched.
   * 'behind': only after a fetch that left more data in some partition than it brought (a backlog).
   */
  fetchAhead?: boolean | 'behind';
  /**
   * How many partitions are applied at the same time (default 1). Each partition stays in order;
   * more than one overlaps the round trips of chunks of different partitions, which is what a
   * consumer bound by store latency rather than CPU needs. With `applyTogether`, how many partitions'
   * chunks one call can gather.
   */
  partitionsConcurrently?: number;
  /** After how long without progress a partition counts as stalled (default 60 s). */
  stallAfterMs?: number;
  /** Where the consumer's metrics go (consumer-metrics.ts); none without it. */
  metrics?: Registry;
  /** Backoff of transient retries: first wait and cap (default 100 ms, 30 s). */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** How often a stall is logged at error level (default once a minute). */
  stallLogEveryMs?: number;
};

/** A message that goes to the DLQ; `opened` when it was sealed and opened (its dead letter is sealed again). */
type Dead = {
  message: KafkaMessage;
  reason: string;
  kind: DeadLetterKind;
  opened?: Extract<Opened, { kind: 'opened' }>;
};

/** A PoisonError, or any AppError that says a retry cannot help, is the data's fault; everything else is retried. */
export const classifyFailure = (err: unknown): FailureKind =>
  err instanceof AppError && !err.retryable ? 'poison' : 'transient';

/** What every message of a consumer without a keyring is: one object for all of them. */
const CLEAR: Opened = { kind: 'clear' };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The consume loop both stream processors share: kafkajs `eachBatch` with manual offset
 * resolution. Per chunk:
 * 0. with a keyring, sealed messages are opened (one key lookup for the chunk); an erased person's
 *    are skipped and counted, a sealed one that does not open will go to the DLQ;
 * 1. each message is validated at the boundary: by `fastParse` when it knows the message, else with
 *    `safeParse`; an unusable one will go to the DLQ with zod's reason;
 * 2. the valid ones are applied (with `applyTogether`, in one call with the chunks of other partitions
 *    in hand at the same moment); when apply fails with a poison error (the data's fault), the chunk
 *    is applied alone and, failing again, split in halves until the single bad message is found, the
 *    rest applied (idempotently, so what was applied before the failure is not counted twice);
 * 3. invalid and poison messages go to the DLQ with the reason, group, topic, partition, offset;
 * 4. only then is the offset resolved and committed, so a crash redelivers rather than skips.
 * A transient failure (connection refused, timeout, failover) retries the chunk with capped
 * exponential backoff and never goes to the DLQ; a partition that has not advanced for
 * `stallAfterMs` is reported by `stalledPartitions()` and `unreadyReason()`.
 */
export class BatchConsumer<S extends z.ZodType> {
  private consumer: Consumer | undefined;
  private dlq: Producer | undefined;
  private admin: Admin | undefined;
  private stopped: Promise<void> | undefined;
  private crashed: Error | undefined;
  private readonly log: Logger;
  /** Per partition: the offset its position waits on (the chunk in hand), since when; removed once it moves. */
  private readonly stalls = new Map<number, StalledPartition & { loggedAt: number }>();
  private readonly classify: (err: unknown) => FailureKind;
  /** Lag per partition and when its position last moved, for the metrics. */
  private readonly progress: PartitionProgress;
  private readonly metrics: ConsumerMetrics | undefined;
  private readonly labels: { group: string; topic: string };
  private readonly source: { group: string; topic: string; progress: PartitionProgress; stalled: () => number[] };
  /** Counts assignments, so a seek to stored positions that waited is dropped once a newer assignment came. */
  private assignments = 0;
  /** The shared offset commit in flight, and the one that will follow it (commitShared). */
  private commitRunning: Promise<void> | undefined;
  private commitNext: Promise<void> | undefined;
  /** With `applyTogether`: gathers the chunks in hand into one call. */
  private readonly gatherer: ChunkGatherer<ChunkPart<z.output<S>>> | undefined;

  constructor(private readonly options: BatchConsumerOptions<S>) {
    this.log = options.log.child({ component: 'consumer', groupId: options.groupId, topic: options.topic });
    this.classify = options.classify ?? classifyFailure;
    this.progress = new PartitionProgress(options.stallAfterMs ?? 60_000);
    this.metrics = options.metrics ? consumerMetrics(options.metrics) : undefined;
    this.labels = { group: options.groupId, topic: options.topic };
    const together = options.applyTogether;
    if (together)
      this.gatherer = new ChunkGatherer((parts) =>
        this.applyCounted(
          parts.reduce((n, p) => n + p.messages.length, 0),
          () => together(parts),
        ),
      );
    // The stalled gauge counts a partition stuck on a failing chunk (what /readyz reports) or one
    // whose position has not moved while messages wait.
    this.source = {
      ...this.labels,
      progress: this.progress,
      stalled: () => [...new Set([...this.progress.stalled(), ...this.stalledPartitions().map((p) => p.partition)])],
    };
  }

  async start(): Promise<void> {
    const { kafka, groupId, topic } = this.options;
    const storedOffsets = this.options.storedOffsets;
    if (storedOffsets) {
      this.admin = kafka.admin();
      await this.admin.connect();
      await this.storedWithinTopic(async () => {
        const ends = await this.topicEnds().catch((err: { type?: string }) => {
          // No topic yet (a fresh deployment whose topics are created on first use): nothing to compare.
          if (err?.type === 'UNKNOWN_TOPIC_OR_PARTITION') return new Map<number, bigint>();
          throw err;
        });
        return { stored: await storedOffsets(topic, [...ends.keys()]), ends };
      });
    }
    this.dlq = kafka.producer({ allowAutoTopicCreation: true });
    await this.dlq.connect();
    this.consumer = kafka.consumer({
      groupId,
      sessionTimeout: 30_000,
      heartbeatInterval: 3_000,
      minBytes: this.options.fetchMinBytes ?? 1,
      maxWaitTimeInMs: this.options.fetchMaxWaitMs ?? 5000,
      idleMaxWaitTimeInMs: this.options.fetchIdleWaitMs,
      fetchAhead: this.options.fetchAhead ?? true,
    });
    // kafkajs restarts the consumer after retriable errors by itself; one it gives up on makes
    // the service unready (so an orchestrator restarts it) instead of idling silently.
    this.consumer.on(this.consumer.events.CRASH, ({ payload }) => {
      this.log.error({ err: payload.error, restart: payload.restart }, 'consumer crashed');
      if (!payload.restart) this.crashed = payload.error;
    });
    const consumer = this.consumer;
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      const partitions = payload.memberAssignment[topic] ?? [];
      // A partition given to another member is no longer ours to report.
      for (const p of this.stalls.keys()) if (!partitions.includes(p)) this.stalls.delete(p);
      this.progress.keepOnly(partitions);
      if (storedOffsets) void this.seekStored(consumer, partitions, storedOffsets);
    });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: this.options.fromBeginning ?? true });
    this.metrics?.sources.add(this.source);
    await consumer.run({
      autoCommit: true,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.options.partitionsConcurrently ?? 1,
      eachBatch: (payload) => this.onBatch(payload),
    });
    this.log.info('consuming');
  }

  private async topicEnds(): Promise<Map<number, bigint>> {
    const offsets = await this.admin!.fetchTopicOffsets(this.options.topic);
    return new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
  }

  /**
   * Reads stored positions and the topic's end offsets (`read`) until no position lies beyond the
   * end, and answers the positions of that read. A position beyond the end is re-read with backoff
   * for `positionGraceMs` (a new partition leader's high watermark can lag the old leader's by the
   * last replicated batch) and refused only if it stays there: following it would silently skip
   * every event up to it.
   */
  private async storedWithinTopic(
    read: () => Promise<{ stored: Map<number, string>; ends: Map<number, bigint> }>,
  ): Promise<Map<number, string>> {
    const graceMs = this.options.positionGraceMs ?? 30_000;
    const since = Date.now();
    for (let attempt = 0; ; attempt++) {
      const { stored, ends } = await read();
      const beyond = [...stored].filter(([p, offset]) => ends.has(p) && BigInt(offset) > ends.get(p)!);
      const waitedMs = Date.now() - since;
      if (beyond.length === 0) {
        if (attempt > 0) this.log.info({ waitedMs }, 'stored positions are within the topic again');
        return stored;
      }
      const list = beyond.map(([p, offset]) => `partition ${p}: stored ${offset} > end ${ends.get(p)}`).join(', ');
      if (waitedMs >= graceMs) {
        throw new AppError(
          ConsumerErrors.POSITION_BEYOND_END,
          `stored positions of group ${this.options.groupId} lie beyond the end of topic ${this.options.topic} (${list}), ` +
            `still after ${Math.round(waitedMs / 1000)} s: the topic was recreated or its data lost. Refusing to skip events; ` +
            'remove the stored positions of this group (consumer_offsets rows) to read the topic from its start, after ' +
            'deciding what the stores should keep.',
        );
      }
      const waitMs = Math.min(graceMs - waitedMs, 250 * 2 ** Math.min(attempt, 4));
      this.log.warn(
        { beyond: list, waitedMs, graceMs, waitMs },
        'stored positions lie beyond the topic end; re-reading the end offsets in case a partition leader just changed',
      );
      await sleep(waitMs);
    }
  }

  private async seekStored(
    consumer: Consumer,
    partitions: number[],
    storedOffsets: NonNullable<BatchConsumerOptions<S>['storedOffsets']>,
  ) {
    const assignment = ++this.assignments;
    try {
      let offsets: Map<number, string>;
      try {
        offsets = await this.storedWithinTopic(async () => {
          const [stored, ends] = await Promise.all([storedOffsets(this.options.topic, partitions), this.topicEnds()]);
          return { stored, ends };
        });
      } catch (err) {
        if ((err as AppError).code !== ConsumerErrors.POSITION_BEYOND_END) throw err;
        // Found after start (the topic was recreated under a running consumer): stop consuming and turn unready.
        this.crashed = err as Error;
        this.log.error({ err }, 'stored positions beyond the topic end; consumer stopped');
        void this.stop();
        return;
      }
      // A newer assignment has its own seek; these positions may be for partitions no longer ours.
      if (assignment !== this.assignments || this.stopped) return;
      for (const [partition, offset] of offsets) consumer.seek({ topic: this.options.topic, partition, offset });
      this.log.info({ offsets: Object.fromEntries(offsets) }, 'seeked to stored offsets');
    } catch (err) {
      // Not fatal: the apply side skips what it already has; seeking only saves refetching.
      this.log.warn({ err }, 'could not read stored offsets');
    }
  }

  /** True while the group member is connected and has not crashed for good. */
  isRunning(): boolean {
    return this.consumer !== undefined && this.stopped === undefined && this.crashed === undefined;
  }

  /** Partitions whose position has not advanced for longer than the stall threshold. */
  stalledPartitions(now = Date.now()): StalledPartition[] {
    const after = this.options.stallAfterMs ?? 60_000;
    return [...this.stalls.values()]
      .filter((s) => now - s.since >= after)
      .map(({ topic, partition, offset, since }) => ({ topic, partition, offset, since }));
  }

  /** Why this consumer should not count as ready (not running, crashed, a stalled partition), or undefined. */
  unreadyReason(): string | undefined {
    if (this.crashed) return `consumer stopped: ${this.crashed.message}`;
    if (!this.isRunning()) return 'consumer not running';
    const stalled = this.stalledPartitions();
    if (stalled.length === 0) return undefined;
    const list = stalled.map(
      (s) => `${s.topic}[${s.partition}] at offset ${s.offset} for ${Math.round((Date.now() - s.since) / 1000)} s`,
    );
    return `group ${this.options.groupId} stalled: ${list.join(', ')}`;
  }

  private async onBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
    const chunkSize = this.options.chunkSize ?? 500;
    const behind = (offset: string) => Math.max(0, Number(batch.highWatermark) - Number(offset) - 1);
    if (batch.messages.length > 0) this.progress.seen(batch.partition, behind(batch.firstOffset()!) + 1);
    for (let i = 0; i < batch.messages.length; i += chunkSize) {
      const chunk = batch.messages.slice(i, i + chunkSize);
      // The partition's position waits on this chunk from now on (a first attempt may itself take
      // long: the segmenter retries a transaction for up to 25 s before giving up).
      this.waitingOn(batch.topic, batch.partition, chunk[0]!.offset);
      const produced = Number(chunk[0]!.timestamp);
      this.metrics?.pickedAge.observe(this.labels, Math.max(0, Date.now() - produced) / 1000);
      for (let attempt = 0; ; attempt++) {
        if (!isRunning() || isStale()) return;
        try {
          await this.processChunk(batch.topic, batch.partition, chunk);
          this.stalls.delete(batch.partition);
          break;
        } catch (err) {
          const waitMs = Math.min(
            this.options.retryMaxMs ?? 30_000,
            (this.options.retryInitialMs ?? 100) * 2 ** Math.min(attempt, 20),
          );
          this.noteStall(batch.topic, batch.partition, chunk[0]!.offset, err, attempt, waitMs);
          // Wait in slices, heartbeating, so the member keeps its partitions and stops promptly.
          const until = Date.now() + waitMs;
          while (Date.now() < until && isRunning() && !isStale()) {
            await sleep(Math.min(500, until - Date.now()));
            await heartbeat();
          }
        }
      }
      this.metrics?.doneAge.observe(this.labels, Math.max(0, Date.now() - produced) / 1000);
      resolveOffset(chunk[chunk.length - 1]!.offset);
      this.progress.moved(batch.partition, behind(chunk[chunk.length - 1]!.offset));
      this.metrics?.processed.inc(this.labels, chunk.length);
      await heartbeat();
    }
    // Committed here rather than by kafkajs after the handler returns (it then finds nothing left to
    // commit): kafkajs commits once per partition batch, so the partitions of one fetch, whose chunks
    // finish together, sent one OffsetCommit each — 12 round trips per fetch before the next one.
    await this.commitShared(payload);
  }

  /**
   * Commits the offsets resolved so far, one OffsetCommit for every partition handler that asks within
   * the same turn of the event loop: a commit starts one macrotask after the first ask (the other
   * partitions of the fetch resolve their offsets meanwhile), and an ask while one is in flight waits
   * for the next, which covers it. Resolves once the caller's resolved offsets are committed.
   */
  private commitShared(
    payload: Pick<EachBatchPayload, 'commitOffsetsIfNecessary' | 'uncommittedOffsets'>,
  ): Promise<void> {
    if (this.commitNext) return this.commitNext;
    const start = async () => {
      await new Promise((r) => setImmediate(r));
      this.commitNext = undefined;
      const running = (this.commitRunning = payload.commitOffsetsIfNecessary(payload.uncommittedOffsets()));
      try {
        await running;
      } finally {
        if (this.commitRunning === running) this.commitRunning = undefined;
      }
    };
    const running = this.commitRunning;
    this.commitNext = running ? running.then(start, start) : start();
    return this.commitNext;
  }

  /** Records that `partition` waits on `offset`, keeping the time it started waiting when the offset is the same. */
  private waitingOn(topic: string, partition: number, offset: string) {
    let stall = this.stalls.get(partition);
    if (stall === undefined || stall.offset !== offset) {
      stall = { topic, partition, offset, since: Date.now(), loggedAt: 0 };
      this.stalls.set(partition, stall);
    }
    return stall;
  }

  private noteStall(
    topic: string,
    partition: number,
    offset: string,
    err: unknown,
    attempt: number,
    waitMs: number,
  ): void {
    const now = Date.now();
    const stall = this.waitingOn(topic, partition, offset);
    const stalledFor = now - stall.since;
    const fields = { err, partition, offset, attempt, waitMs, stalledForMs: stalledFor };
    if (
      stalledFor >= (this.options.stallAfterMs ?? 60_000) &&
      now - stall.loggedAt >= (this.options.stallLogEveryMs ?? 60_000)
    ) {
      stall.loggedAt = now;
      this.log.error(fields, 'partition stalled: chunk keeps failing transiently');
    } else {
      this.log.warn(fields, 'transient failure applying chunk, retrying');
    }
  }

  /** Validates, applies (isolating poison), dead-letters; throws only on transient failures. */
  private async processChunk(topic: string, partition: number, chunk: KafkaMessage[]): Promise<void> {
    // Announced before the key lookup, so a call gathering other partitions' chunks waits for this one.
    const ticket = this.gatherer?.enter();
    try {
      await this.processChunkIn(topic, partition, chunk, ticket);
    } finally {
      ticket?.close();
    }
  }

  private async processChunkIn(
    topic: string,
    partition: number,
    chunk: KafkaMessage[],
    ticket: GatherTicket | undefined,
  ): Promise<void> {
    const valid: Consumed<z.output<S>>[] = [];
    /** The message each valid one came from (same index), for a poison one's dead letter. */
    const sources: { message: KafkaMessage; opened: Opened }[] = [];
    const dead: Dead[] = [];
    // One key lookup for the chunk (none for a person cached); a failure to read keys is transient.
    const opened = this.options.keyring
      ? await this.options.keyring.open(chunk.map((m) => m.value))
      : chunk.map(() => CLEAR);
    let shredded = 0;
    for (let i = 0; i < chunk.length; i++) {
      const message = chunk[i]!;
      const o = opened[i]!;
      if (o.kind === 'shredded') {
        shredded += 1;
        continue;
      }
      const sealed = o.kind === 'opened' ? o : undefined;
      const parsed =
        o.kind === 'broken'
          ? { ok: false as const, reason: o.reason, kind: 'unreadable' as const }
          : this.parse(sealed ? sealed.plaintext : message.value);
      if (parsed.ok) {
        valid.push({ value: parsed.value, partition, offset: message.offset });
        sources.push({ message, opened: o });
      } else dead.push({ message, reason: parsed.reason, kind: parsed.kind, opened: sealed });
    }
    if (shredded > 0) this.metrics?.shredded.inc(this.labels, shredded);
    const poison = await this.applyIsolating(valid, topic, partition, chunk[chunk.length - 1]!.offset, ticket);
    if (poison.length > 0) {
      // Rare: only then is a map from offset to message worth building.
      const byOffset = new Map(valid.map((v, i) => [v.offset, sources[i]!]));
      for (const p of poison) {
        const { message, opened: o } = byOffset.get(p.offset)!;
        dead.push({ message, reason: p.reason, kind: 'poison', opened: o.kind === 'opened' ? o : undefined });
      }
    }
    // After apply: a chunk whose apply fails is retried whole, and its dead letters would
    // otherwise be written once per attempt.
    if (dead.length > 0)
      await this.deadLetter(
        topic,
        partition,
        dead.sort((a, b) => Number(BigInt(a.message.offset) - BigInt(b.message.offset))),
      );
  }

  /**
   * Applies `messages` (covering offsets up to `lastOffset`); on a poison failure, splits them
   * in halves until the bad message is alone, and returns the poison messages with their reason.
   * A transient failure propagates (the whole chunk is retried; apply is idempotent). With a
   * `ticket`, the first attempt goes to the gatherer (together with other partitions' chunks); a
   * poison failure there is tried again alone, since it may be another partition's message.
   */
  private async applyIsolating(
    messages: Consumed<z.output<S>>[],
    topic: string,
    partition: number,
    lastOffset: string,
    ticket?: GatherTicket,
  ): Promise<{ offset: string; reason: string }[]> {
    const chunk = { topic, lastOffset };
    try {
      if (ticket) await this.gatherer!.submit(ticket, { messages, partition, chunk });
      else await this.applyCounted(messages.length, () => this.options.apply(messages, partition, chunk));
      return [];
    } catch (err) {
      if (this.classify(err) !== 'poison') throw err;
      if (ticket) return this.applyIsolating(messages, topic, partition, lastOffset);
      if (messages.length === 0) throw err;
      if (messages.length === 1) {
        const [only] = messages;
        // Moves a stored position past the poison message (a no-op for consumers without one).
        await this.options.apply([], partition, { topic, lastOffset });
        return [{ offset: only!.offset, reason: `apply failed: ${describe(err)}` }];
      }
      const mid = Math.floor(messages.length / 2);
      const right = messages.slice(mid);
      const leftLast = (BigInt(right[0]!.offset) - 1n).toString();
      const a = await this.applyIsolating(messages.slice(0, mid), topic, partition, leftLast);
      const b = await this.applyIsolating(right, topic, partition, lastOffset);
      return [...a, ...b];
    }
  }

  /** A call of `apply` or `applyTogether` for `count` messages, timed and counted. */
  private async applyCounted(count: number, call: () => Promise<void | { duplicates?: number }>): Promise<void> {
    const end = this.metrics?.applySeconds.startTimer(this.labels);
    const result = await call();
    end?.();
    this.metrics?.applied.inc(this.labels, count);
    if (result?.duplicates) this.metrics?.duplicates.inc(this.labels, result.duplicates);
  }

  private parse(
    value: Buffer | null,
  ): { ok: true; value: z.output<S> } | { ok: false; reason: string; kind: DeadLetterKind } {
    if (value === null) return { ok: false, reason: 'empty message value', kind: 'empty' };
    let json: unknown;
    try {
      json = JSON.parse(value.toString('utf8'));
    } catch (err) {
      return { ok: false, reason: `value is not JSON: ${(err as Error).message}`, kind: 'not_json' };
    }
    const fast = this.options.fastParse?.(json);
    if (fast !== undefined) return { ok: true, value: fast };
    const result = this.options.schema.safeParse(json);
    if (result.success) return { ok: true, value: result.data };
    return { ok: false, reason: `invalid message: ${describeIssues(result.error.issues, '(root)')}`, kind: 'invalid' };
  }

  /** Writes the dead letters of one chunk in one acks=all send. */
  private async deadLetter(topic: string, partition: number, dead: Dead[]): Promise<void> {
    const failedAt = new Date().toISOString();
    const messages = dead.map(({ message, reason, kind, opened }) => {
      const record: DeadLetter = {
        reason,
        consumerGroup: this.options.groupId,
        topic,
        partition,
        offset: message.offset,
        key: message.key?.toString('utf8') ?? null,
        // A sealed message's dead letter holds it opened and is sealed whole for the same person:
        // readable to whoever holds the keys, and shredded with the rest of theirs. One that
        // does not open keeps its bytes (base64; they are ciphertext).
        value: opened
          ? opened.plaintext.toString('utf8')
          : kind === 'unreadable'
            ? message.value!.toString('base64')
            : (message.value?.toString('utf8') ?? null),
        failedAt,
      };
      // The reason of a sealed message may quote its data (a store's error): it is logged only when the message was in
      // clear.
      this.log.warn({ partition, offset: message.offset, kind, ...(!opened && { reason }) }, 'message sent to DLQ');
      return { key: message.key, value: opened ? opened.reseal(JSON.stringify(record)) : JSON.stringify(record) };
    });
    await this.dlq!.send({ topic: this.options.dlqTopic, acks: -1, messages });
    for (const { kind } of dead) this.metrics?.deadLettered.inc({ ...this.labels, reason: kind });
  }

  /** Leaves the group after the batch in hand is applied; safe to call twice. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.metrics?.sources.delete(this.source);
      await this.consumer?.disconnect();
      await this.dlq?.disconnect();
      await this.admin?.disconnect();
    })();
    return this.stopped;
  }
}

/** An error as one line for a DLQ reason: its code when it has one, and its message. */
function describe(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? `${e.code}: ` : '';
  return `${code}${typeof e?.message === 'string' ? e.message : String(err)}`;
}
