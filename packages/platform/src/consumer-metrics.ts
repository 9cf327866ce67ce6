import { counter, gauge, histogram, LATENCY_BUCKETS, type Registry } from './metrics';

/**
 * Per partition of one consumer: how many messages are still to be read (from the batch's high
 * watermark) and when the consumer last moved its position. A partition with messages waiting
 * whose position has not moved for `stallAfterMs` is stalled. Kept apart from the consume loop
 * so a richer stall detector can replace it without touching the metrics.
 */
export class PartitionProgress {
  private readonly partitions = new Map<number, { lag: number; movedAt: number }>();

  constructor(
    private readonly stallAfterMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** A batch of the partition arrived with `lag` messages not yet handled. */
  seen(partition: number, lag: number): void {
    const p = this.partitions.get(partition);
    if (p) p.lag = lag;
    else this.partitions.set(partition, { lag, movedAt: this.now() });
  }

  /** The consumer's position on the partition moved; `lag` messages remain behind it. */
  moved(partition: number, lag: number): void {
    this.partitions.set(partition, { lag, movedAt: this.now() });
  }

  /** After a rebalance: forget partitions this member no longer owns (another member reports them). */
  keepOnly(partitions: readonly number[]): void {
    for (const partition of [...this.partitions.keys()])
      if (!partitions.includes(partition)) this.partitions.delete(partition);
  }

  lag(): Map<number, number> {
    return new Map([...this.partitions].map(([partition, p]) => [partition, p.lag]));
  }

  stalled(): number[] {
    const now = this.now();
    return [...this.partitions]
      .filter(([, p]) => p.lag > 0 && now - p.movedAt > this.stallAfterMs)
      .map(([partition]) => partition);
  }
}

/** What a dead letter's `reason` is, as a label with few values. */
export type DeadLetterKind = 'empty' | 'not_json' | 'invalid' | 'poison' | 'unreadable';

/** One live consumer: its lag per partition, and the partitions it counts as stalled. */
type Source = { group: string; topic: string; progress: PartitionProgress; stalled: () => number[] };

const sourcesOf = new WeakMap<Registry, Set<Source>>();

/**
 * The metrics every stream processor shares, labelled by consumer group and topic. The lag and
 * stalled gauges are read from each live consumer's `PartitionProgress` at scrape time.
 */
export function consumerMetrics(registry: Registry) {
  let sources = sourcesOf.get(registry);
  if (!sources) {
    const live = new Set<Source>();
    sourcesOf.set(registry, live);
    sources = live;
    gauge(registry, {
      name: 'consumer_partition_lag',
      help: 'Messages on the partition after the last one this consumer handled (from the last fetched batch)',
      labelNames: ['group', 'topic', 'partition'],
      collect() {
        this.reset();
        for (const s of live)
          for (const [partition, lag] of s.progress.lag())
            this.set({ group: s.group, topic: s.topic, partition: String(partition) }, lag);
      },
    });
    gauge(registry, {
      name: 'consumer_stalled_partitions',
      help: 'Partitions stuck on a failing chunk, or with messages waiting and a position that has not moved, for the stall threshold',
      labelNames: ['group', 'topic'],
      collect() {
        this.reset();
        for (const s of live) this.set({ group: s.group, topic: s.topic }, s.stalled().length);
      },
    });
  }
  const labelNames = ['group', 'topic'] as const;
  return {
    sources,
    processed: counter(registry, {
      name: 'consumer_messages_processed_total',
      help: 'Messages read and handled (applied, skipped or dead-lettered)',
      labelNames,
    }),
    applied: counter(registry, {
      name: 'consumer_messages_applied_total',
      help: 'Valid messages handed to the apply step',
      labelNames,
    }),
    duplicates: counter(registry, {
      name: 'consumer_duplicates_total',
      help: 'Messages the apply step recognised as already applied',
      labelNames,
    }),
    deadLettered: counter(registry, {
      name: 'consumer_dead_letters_total',
      help: 'Messages sent to the DLQ, by reason (empty, not_json, invalid, poison, unreadable: sealed but does not open)',
      labelNames: ['group', 'topic', 'reason'],
    }),
    shredded: counter(registry, {
      name: 'consumer_shredded_messages_total',
      help: 'Messages skipped because they are sealed for a person whose key an erasure destroyed',
      labelNames,
    }),
    applySeconds: histogram(registry, {
      name: 'consumer_batch_apply_seconds',
      help: 'Time to apply one chunk of messages durably',
      labelNames,
      buckets: LATENCY_BUCKETS,
    }),
    /**
     * Where a message's freshness goes inside the consumer: its age (now minus the Kafka timestamp the
     * producer set) when its chunk starts (fetch wait, and waiting behind other partitions' batches) and
     * when its chunk is durable (plus the apply). Observed once per chunk, for its oldest message.
     */
    pickedAge: histogram(registry, {
      name: 'consumer_message_age_at_pickup_seconds',
      help: "Age of a chunk's oldest message (from its Kafka timestamp) when the consumer starts on the chunk",
      labelNames,
      buckets: LATENCY_BUCKETS,
    }),
    doneAge: histogram(registry, {
      name: 'consumer_message_age_at_done_seconds',
      help: "Age of a chunk's oldest message (from its Kafka timestamp) when the chunk is applied durably",
      labelNames,
      buckets: LATENCY_BUCKETS,
    }),
  };
}

export type ConsumerMetrics = ReturnType<typeof consumerMetrics>;
