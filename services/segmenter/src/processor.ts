import { createAudienceEngine, createInterestSource } from '@pstream/audiences';
import { fastTopicMessage, topicMessageSchema, type TopicMessage } from '@pstream/events';
import { keys } from '@pstream/interest-store';
import type { LifecycleRules } from '@pstream/lifecycle';
import {
  BatchConsumer,
  type ChunkPart,
  consumerTuning,
  createKeyring,
  type Logger,
  type Pool,
  type Redis,
  type Registry,
} from '@pstream/platform';
import { createAudienceStore, createConverter, createSegmentStore } from '@pstream/profile-store';
import { decayParams } from '@pstream/scoring';
import type { Kafka, Producer } from 'kafkajs';
import { createAudienceRefresher } from './audiences';
import { lifecycleRules, type SegmenterConfig } from './config';
import { classifySegmenterFailure } from './errors';
import { segmenterMetrics } from './metrics';
import { OutboxRelay } from './outbox';
import { Sweeper } from './sweep';

export type SegmenterDeps = {
  kafka: Kafka;
  pool: Pool;
  /** Sends lifecycle transitions (acks=all). */
  producer: Producer;
  log: Logger;
  /** Thresholds; default: from the config. */
  rules?: LifecycleRules;
  /** Wall clock of stage evaluation; injectable so tests can move time. */
  now?: () => number;
  /** Where the segmenter's and its consumer's metrics go; none without it. */
  metrics?: Registry;
  /** Redis of the scorer's interests: with it, the segmenter also keeps saved audiences current (audiences.ts). */
  redis?: Redis;
};

/**
 * The segmenter: read → validate → apply facts, identities and stages together with the
 * consumer positions in one Postgres transaction per fetch, across the partitions it brought (BatchConsumer's
 * `applyTogether`, profile-store's createSegmentStore) → commit Kafka's offset (a shortcut only). Beside the consumer run the sweep (changes caused by time) and the outbox
 * relay (transitions → profile.lifecycle.v1).
 */
export function createSegmenter(config: SegmenterConfig, deps: SegmenterDeps) {
  const rules = deps.rules ?? lifecycleRules(config);
  const now = deps.now ?? Date.now;
  const log = deps.log;
  let stopping = false;
  // A server that goes away emits 'error' on checked-out clients too; without a listener that
  // would crash the process. The failed query rejects anyway, and inTransaction retries it.
  deps.pool.on('connect', (client) =>
    client.on('error', (err) => log.warn({ err: err.message }, 'Postgres connection lost')),
  );
  const store = createSegmentStore({
    pool: deps.pool,
    rules,
    convert: createConverter(config.BASE_CURRENCY, config.CURRENCY_RATES),
    log,
    isStopping: () => stopping,
    maxMergedIds: config.MAX_MERGED_IDS,
    // With the chunk's facts, in its transaction: a person touched but not yet changed is merely re-checked once more.
    touchAudiences: deps.redis !== undefined,
  });
  // Seals what the segmenter publishes and opens what it reads (docs/privacy.md).
  const keyring = createKeyring(config, deps.pool, deps.metrics);
  const relay = new OutboxRelay({
    keyring,
    pool: deps.pool,
    producer: deps.producer,
    topic: config.LIFECYCLE_TOPIC,
    schema: config.PG_SCHEMA,
    log: log.child({ component: 'outbox' }),
    pollMs: config.SEGMENTER_OUTBOX_POLL_MS,
  });
  const audienceRelay = new OutboxRelay({
    keyring,
    pool: deps.pool,
    producer: deps.producer,
    topic: config.AUDIENCES_TOPIC,
    schema: config.PG_SCHEMA,
    log: log.child({ component: 'audience-outbox' }),
    pollMs: config.SEGMENTER_OUTBOX_POLL_MS,
    table: 'audience_outbox',
    idField: 'changeId',
  });
  const audiences = createAudienceStore(deps.pool);
  const refreshAudiences =
    deps.redis &&
    createAudienceRefresher({
      engine: createAudienceEngine({
        facts: audiences,
        interests: createInterestSource(
          deps.redis,
          keys(config.REDIS_PREFIX),
          decayParams(config.DECAY_LANDMARK, config.DECAY_HALF_LIFE_DAYS),
          config.INTEREST_VALUE_SCALE,
        ),
      }),
      store: audiences,
      log: log.child({ component: 'audiences' }),
      onChanges: () => audienceRelay.poke(),
      dueBatch: config.SEGMENTER_AUDIENCE_DUE_BATCH,
      touchGraceMs: config.SEGMENTER_AUDIENCE_TOUCH_GRACE_MS,
      fullEveryMs: config.SEGMENTER_AUDIENCE_FULL_EVERY_MS,
    });
  const metrics = deps.metrics ? segmenterMetrics(deps.metrics, relay) : undefined;
  const sweeper = new Sweeper({
    store,
    log: log.child({ component: 'sweep' }),
    intervalMs: config.SEGMENTER_SWEEP_INTERVAL_MS,
    batch: config.SEGMENTER_SWEEP_BATCH,
    retention: { dedupeWindowHours: config.DEDUPE_WINDOW_HOURS, retentionDays: config.RETENTION_DAYS },
    now,
    onTransitions: (transitions) => {
      metrics?.transitions(transitions);
      relay.poke();
    },
    onSwept: (reviewed, seconds) => metrics?.swept(reviewed, seconds),
    onPruned: (pruned) => metrics?.pruned(pruned),
    ...(refreshAudiences && { after: refreshAudiences }),
  });
  const groupId = config.SEGMENTER_GROUP;
  /** The chunks of one or more partitions, their effects and positions in one transaction. */
  const applyParts = async (parts: ChunkPart<TopicMessage>[]) => {
    const result = await store.applyParts(
      parts.map(({ messages, partition, chunk }) => ({
        messages,
        at: { groupId, topic: chunk.topic, partition, lastOffset: chunk.lastOffset },
      })),
      now(),
    );
    if (result.skipped > 0)
      log.info({ partitions: parts.map((p) => p.partition), skipped: result.skipped }, 'redelivered messages skipped');
    if (result.transitions.length > 0) relay.poke();
    metrics?.transitions(result.transitions);
    metrics?.refusedLinks(result.refusedLinks);
    return { duplicates: result.skipped };
  };
  const consumer = new BatchConsumer({
    kafka: deps.kafka,
    log,
    groupId,
    topic: config.EVENTS_TOPIC,
    dlqTopic: config.DLQ_TOPIC,
    schema: topicMessageSchema,
    fastParse: fastTopicMessage,
    keyring,
    metrics: deps.metrics,
    classify: classifySegmenterFailure,
    stallAfterMs: config.CONSUMER_STALL_SECONDS * 1000,
    retryMaxMs: config.CONSUMER_RETRY_MAX_MS,
    partitionsConcurrently: config.SEGMENTER_PARTITIONS_CONCURRENTLY,
    ...consumerTuning(config),
    storedOffsets: (topic, partitions) => store.positions(groupId, topic, partitions),
    positionGraceMs: config.CONSUMER_POSITION_GRACE_SECONDS * 1000,
    apply: (messages, partition, chunk) => applyParts([{ messages, partition, chunk }]),
    applyTogether: applyParts,
  });
  return {
    store,
    sweeper,
    relay,
    audienceRelay,
    async start(): Promise<void> {
      relay.start();
      sweeper.start();
      if (refreshAudiences) audienceRelay.start();
      await consumer.start();
    },
    isRunning: () => consumer.isRunning(),
    /** Why the consumer is not ready (stopped, crashed, a stalled partition), or undefined. */
    unreadyReason: () => consumer.unreadyReason(),
    stalledPartitions: () => consumer.stalledPartitions(),
    /**
     * Stops intake first, then the sweep, then the outbox relay: a drain under way finishes, what is
     * still in the outbox goes out after the next start (it is durable in Postgres). Safe to call twice.
     */
    async stop(): Promise<void> {
      stopping = true;
      await consumer.stop();
      await sweeper.stop();
      await relay.stop();
      await audienceRelay.stop();
    },
  };
}

export type Segmenter = ReturnType<typeof createSegmenter>;
