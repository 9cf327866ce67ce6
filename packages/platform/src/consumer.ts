import type { Consumer, EachBatchPayload, Kafka, KafkaMessage, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { describeIssues } from './errors';
import { consumerMetrics, PartitionProgress, type ConsumerMetrics, type DeadLetterKind } from './consumer-metrics';
import type { Registry } from './metrics';

/** A message that passed validation, with where it came from. */
export type Consumed<T> = { value: T; partition: number; offset: string };

/** A message a consumer could not use, as written to the DLQ topic (SPEC §3.4). */
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

export type BatchConsumerOptions<S extends z.ZodType> = {
  kafka: Kafka;
  log: Logger;
  groupId: string;
  topic: string;
  dlqTopic: string;
  schema: S;
  /**
   * Applies a batch of valid messages; must make their effects durable before resolving.
   * `chunk` names the topic and the chunk's last offset (DLQ'd messages included), for a
   * consumer that stores its position together with its effects.
   */
  apply: (
    messages: Consumed<z.output<S>>[],
    partition: number,
    chunk: { topic: string; lastOffset: string },
  ) => Promise<void | { duplicates?: number }>;
  /**
   * Positions kept outside Kafka (e.g. in Postgres with the effects): on each assignment the
   * consumer seeks every assigned partition that has one. Optional; without it Kafka's
   * committed offsets are used.
   */
  storedOffsets?: (topic: string, partitions: number[]) => Promise<Map<number, string>>;
  /** Read the topic from the beginning when the group has no committed offset. */
  fromBeginning?: boolean;
  /** How many messages one `apply` call gets at most; heartbeats are sent between chunks. */
  chunkSize?: number;
  /** Where the consumer's metrics go (consumer-metrics.ts); none without it. */
  metrics?: Registry;
  /** A partition with messages waiting whose position has not moved for this long counts as stalled (default 60 s). */
  stallAfterMs?: number;
};

/**
 * The consume loop both stream processors share: kafkajs `eachBatch` with manual offset
 * resolution. Each message is validated at the boundary with `safeParse`; an unusable one goes
 * to the DLQ with its reason and the loop carries on. Offsets are resolved (and committed) only
 * after `apply` made the chunk's effects durable, so a crash redelivers rather than skips; the
 * apply side dedupes, so a redelivery never counts twice.
 */
export class BatchConsumer<S extends z.ZodType> {
  private consumer: Consumer | undefined;
  private dlq: Producer | undefined;
  private stopped: Promise<void> | undefined;
  private crashed: Error | undefined;
  private readonly log: Logger;
  private readonly progress: PartitionProgress;
  private readonly metrics: ConsumerMetrics | undefined;
  private readonly labels: { group: string; topic: string };

  constructor(private readonly options: BatchConsumerOptions<S>) {
    this.log = options.log.child({ component: 'consumer', groupId: options.groupId, topic: options.topic });
    this.progress = new PartitionProgress(options.stallAfterMs ?? 60_000);
    this.metrics = options.metrics ? consumerMetrics(options.metrics) : undefined;
    this.labels = { group: options.groupId, topic: options.topic };
  }

  async start(): Promise<void> {
    const { kafka, groupId, topic } = this.options;
    this.dlq = kafka.producer({ allowAutoTopicCreation: true });
    await this.dlq.connect();
    this.consumer = kafka.consumer({ groupId, sessionTimeout: 30_000, heartbeatInterval: 3_000 });
    // kafkajs restarts the consumer after retriable errors by itself; one it gives up on makes
    // the service unready (so an orchestrator restarts it) instead of idling silently.
    this.consumer.on(this.consumer.events.CRASH, ({ payload }) => {
      this.log.error({ err: payload.error, restart: payload.restart }, 'consumer crashed');
      if (!payload.restart) this.crashed = payload.error;
    });
    await this.consumer.connect();
    await this.consumer.subscribe({ topic, fromBeginning: this.options.fromBeginning ?? true });
    this.consumer.on(this.consumer.events.GROUP_JOIN, ({ payload }) => this.progress.keepOnly(payload.memberAssignment[topic] ?? []));
    const storedOffsets = this.options.storedOffsets;
    if (storedOffsets) {
      const consumer = this.consumer;
      consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
        const partitions = payload.memberAssignment[topic] ?? [];
        storedOffsets(topic, partitions).then(
          (offsets) => {
            for (const [partition, offset] of offsets) consumer.seek({ topic, partition, offset });
            this.log.info({ offsets: Object.fromEntries(offsets) }, 'seeked to stored offsets');
          },
          // Not fatal: the apply side skips what it already has; seeking only saves refetching.
          (err: unknown) => this.log.warn({ err }, 'could not read stored offsets'),
        );
      });
    }
    this.metrics?.sources.add({ ...this.labels, progress: this.progress });
    await this.consumer.run({
      autoCommit: true,
      eachBatchAutoResolve: false,
      eachBatch: (payload) => this.onBatch(payload),
    });
    this.log.info('consuming');
  }

  /** True while the group member is connected and has not crashed for good. */
  isRunning(): boolean {
    return this.consumer !== undefined && this.stopped === undefined && this.crashed === undefined;
  }

  /** Partitions whose position has not moved for `stallAfterMs` while messages wait. */
  stalledPartitions(): number[] {
    return this.progress.stalled();
  }

  private async onBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning, isStale, commitOffsetsIfNecessary } = payload;
    const chunkSize = this.options.chunkSize ?? 500;
    const behind = (offset: string) => Math.max(0, Number(batch.highWatermark) - Number(offset) - 1);
    if (batch.messages.length > 0) this.progress.seen(batch.partition, behind(batch.firstOffset()!) + 1);
    for (let i = 0; i < batch.messages.length; i += chunkSize) {
      if (!isRunning() || isStale()) return;
      const chunk = batch.messages.slice(i, i + chunkSize);
      const valid: Consumed<z.output<S>>[] = [];
      const dead: { message: KafkaMessage; reason: string; kind: DeadLetterKind }[] = [];
      for (const message of chunk) {
        const parsed = this.parse(message);
        if (parsed.ok) valid.push({ value: parsed.value, partition: batch.partition, offset: message.offset });
        else dead.push({ message, reason: parsed.reason, kind: parsed.kind });
      }
      const last = chunk[chunk.length - 1];
      if (valid.length > 0) await this.applyChunk(valid, batch.partition, { topic: batch.topic, lastOffset: last!.offset });
      // After apply: a chunk whose apply fails is redelivered whole, and its dead letters would
      // otherwise be written once per attempt.
      for (const { message, reason, kind } of dead) {
        await this.deadLetter(batch.topic, batch.partition, message, reason);
        this.metrics?.deadLettered.inc({ ...this.labels, reason: kind });
      }
      if (last) resolveOffset(last.offset);
      if (last) this.progress.moved(batch.partition, behind(last.offset));
      this.metrics?.processed.inc(this.labels, chunk.length);
      await commitOffsetsIfNecessary();
      await heartbeat();
    }
  }

  /** `apply`, timed and counted. */
  private async applyChunk(valid: Consumed<z.output<S>>[], partition: number, chunk: { topic: string; lastOffset: string }): Promise<void> {
    const end = this.metrics?.applySeconds.startTimer(this.labels);
    const result = await this.options.apply(valid, partition, chunk);
    end?.();
    this.metrics?.applied.inc(this.labels, valid.length);
    if (result?.duplicates) this.metrics?.duplicates.inc(this.labels, result.duplicates);
  }

  private parse(message: KafkaMessage): { ok: true; value: z.output<S> } | { ok: false; reason: string; kind: DeadLetterKind } {
    if (message.value === null) return { ok: false, reason: 'empty message value', kind: 'empty' };
    let json: unknown;
    try {
      json = JSON.parse(message.value.toString('utf8'));
    } catch (err) {
      return { ok: false, reason: `value is not JSON: ${(err as Error).message}`, kind: 'not_json' };
    }
    const result = this.options.schema.safeParse(json);
    if (result.success) return { ok: true, value: result.data };
    return { ok: false, reason: `invalid message: ${describeIssues(result.error.issues, '(root)')}`, kind: 'invalid' };
  }

  private async deadLetter(topic: string, partition: number, message: KafkaMessage, reason: string): Promise<void> {
    const record: DeadLetter = {
      reason,
      consumerGroup: this.options.groupId,
      topic,
      partition,
      offset: message.offset,
      key: message.key?.toString('utf8') ?? null,
      value: message.value?.toString('utf8') ?? null,
      failedAt: new Date().toISOString(),
    };
    this.log.warn({ partition, offset: message.offset, reason }, 'message sent to DLQ');
    await this.dlq!.send({
      topic: this.options.dlqTopic,
      acks: -1,
      messages: [{ key: message.key, value: JSON.stringify(record) }],
    });
  }

  /** Leaves the group after the batch in hand is applied; safe to call twice. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      for (const s of this.metrics?.sources ?? []) if (s.progress === this.progress) this.metrics?.sources.delete(s);
      await this.consumer?.disconnect();
      await this.dlq?.disconnect();
    })();
    return this.stopped;
  }
}
