import { topicMessageSchema, type TopicMessage } from '@pstream/events';
import { applyDeltas, keys, type InterestDelta } from '@pstream/interest-store';
import { BatchConsumer, type Consumed } from '@pstream/platform';
import { decayParams } from '@pstream/scoring';
import type { Redis } from 'ioredis';
import type { Kafka } from 'kafkajs';
import type { Logger } from '@pstream/platform';
import type { ScorerConfig } from './config';
import { toDelta } from './score';

/**
 * The scorer's stream processor: read (BatchConsumer) → validate (schema at the boundary) →
 * score (toDelta) → write (one pipelined, per-event atomic script) → commit (after the write).
 */
export function createScorerConsumer(config: ScorerConfig, deps: { kafka: Kafka; redis: Redis; log: Logger }) {
  const decay = decayParams(config.DECAY_LANDMARK, config.DECAY_HALF_LIFE_DAYS);
  const k = keys(config.REDIS_PREFIX);
  const dedupeWindowMs = config.DEDUPE_WINDOW_HOURS * 3_600_000;
  return new BatchConsumer({
    kafka: deps.kafka,
    log: deps.log,
    groupId: config.SCORER_GROUP,
    topic: config.EVENTS_TOPIC,
    dlqTopic: config.DLQ_TOPIC,
    schema: topicMessageSchema,
    apply: async (messages: Consumed<TopicMessage>[]) => {
      const deltas: InterestDelta[] = [];
      for (const { value } of messages) {
        if (value.kind !== 'event') continue;
        const delta = toDelta(value, decay);
        if (delta) deltas.push(delta);
      }
      if (deltas.length > 0) await applyDeltas(deps.redis, k, deltas, dedupeWindowMs);
    },
  });
}
