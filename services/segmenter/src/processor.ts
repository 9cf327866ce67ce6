import { topicMessageSchema, type ProfileEvent, type TopicMessage } from '@pstream/events';
import type { LifecycleRules } from '@pstream/lifecycle';
import { BatchConsumer, type Consumed } from '@pstream/platform';
import type { Kafka, Producer } from 'kafkajs';
import type { Pool } from '@pstream/platform';
import type { Logger } from '@pstream/platform';
import type { SegmenterConfig } from './config';
import { createFactsRepository, type Transition } from './repository';

/**
 * The segmenter's stream processor: read → validate → apply facts and stages in one Postgres
 * transaction → publish the stage changes on the lifecycle topic → commit the offsets.
 * A crash after the Postgres commit redelivers the batch; the dedupe records make it a no-op
 * (its transitions were published or are lost with the crash — see README, "lifecycle topic").
 */
export function createSegmenterConsumer(
  config: SegmenterConfig,
  deps: { kafka: Kafka; pool: Pool; producer: Producer; log: Logger; rules: LifecycleRules; now?: () => number },
) {
  const repo = createFactsRepository(deps.pool, deps.rules);
  const now = deps.now ?? Date.now;
  return new BatchConsumer({
    kafka: deps.kafka,
    log: deps.log,
    groupId: config.SEGMENTER_GROUP,
    topic: config.EVENTS_TOPIC,
    dlqTopic: config.DLQ_TOPIC,
    schema: topicMessageSchema,
    apply: async (messages: Consumed<TopicMessage>[]) => {
      const events = messages.map((m) => m.value).filter((v): v is ProfileEvent => v.kind === 'event');
      if (events.length === 0) return;
      const transitions = await repo.applyBatch(events, now());
      if (transitions.length > 0) await publishTransitions(deps.producer, config.LIFECYCLE_TOPIC, transitions);
    },
  });
}

/** `{ userId, from, to, at, reason }` per change, keyed by the person (SPEC §3.4). */
export async function publishTransitions(producer: Producer, topic: string, transitions: Transition[]): Promise<void> {
  await producer.send({
    topic,
    acks: -1,
    messages: transitions.map((t) => ({
      key: t.profileKey,
      value: JSON.stringify({ userId: t.profileKey, from: t.from, to: t.to, at: t.at, reason: t.reason }),
    })),
  });
}
