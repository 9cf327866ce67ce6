import { linkOf, topicMessageSchema, type ProfileEvent, type TopicMessage } from '@pstream/events';
import { createInterestStore, lookupCatalog, type InterestStore } from '@pstream/interest-store';
import { BatchConsumer, type Consumed, type Logger } from '@pstream/platform';
import { targetTag } from '@pstream/scoring';
import type { Redis } from '@pstream/platform';
import type { Kafka } from 'kafkajs';
import { storeOptions, type ScorerConfig } from './config';
import { prepareEvent } from './score';

export type ScorerDeps = { kafka: Kafka; redis: Redis; log: Logger };

export type ScorerOptions = {
  /** Consumer group (default SCORER_GROUP); the rebuild uses a temporary one. */
  groupId?: string;
};

/**
 * Applies one chunk of messages in partition order: runs of events go to Redis in one pipeline
 * (catalog tags fetched first, in one round trip, for events without tags); an identify or alias
 * that links two ids (`linkOf`, the identity rule of the topic contract) is a merge, done between
 * the events before and after it.
 */
export function createChunkApplier(store: InterestStore, redis: Redis, config: ScorerConfig, log: Logger) {
  const { decay } = storeOptions(config).scoring;
  const applyEvents = async (events: ProfileEvent[]) => {
    if (events.length === 0) return;
    const tagless = events.filter((e) => e.tags.length === 0).map((e) => targetTag(e.target));
    const catalog = await lookupCatalog(redis, store.keys, tagless);
    await store.apply(events.map((e) => prepareEvent(e, decay, catalog)));
  };
  return async (messages: TopicMessage[]): Promise<void> => {
    let run: ProfileEvent[] = [];
    for (const m of messages) {
      if (m.kind === 'event') {
        run.push(m);
        continue;
      }
      const link = linkOf(m);
      if (!link) continue;
      await applyEvents(run);
      run = [];
      const { mergedInto } = await store.merge(link.from, link.to);
      if (mergedInto !== undefined && mergedInto !== link.to) {
        log.info({ source: link.from, target: link.to, mergedInto }, 'profile already merged elsewhere');
      }
    }
    await applyEvents(run);
  };
}

/**
 * The scorer's stream processor: read (BatchConsumer) → validate (schema at the boundary) →
 * prepare (score.ts: catalog tags, forward factor) → write (one pipelined, per-event atomic
 * script; merges in between) → commit (after the write).
 */
export function createScorerConsumer(config: ScorerConfig, deps: ScorerDeps, options: ScorerOptions = {}) {
  const store = createInterestStore(deps.redis, config.REDIS_PREFIX, storeOptions(config));
  const applyChunk = createChunkApplier(store, deps.redis, config, deps.log);
  return new BatchConsumer({
    kafka: deps.kafka,
    log: deps.log,
    groupId: options.groupId ?? config.SCORER_GROUP,
    topic: config.EVENTS_TOPIC,
    dlqTopic: config.DLQ_TOPIC,
    schema: topicMessageSchema,
    apply: (messages: Consumed<TopicMessage>[]) => applyChunk(messages.map((m) => m.value)),
  });
}
