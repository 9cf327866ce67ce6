import {
  fastTopicMessage,
  idsNamedBy,
  linkOf,
  topicMessageSchema,
  type ProfileEvent,
  type TopicMessage,
} from '@pstream/events';
import {
  createInterestStore,
  eraseInterests,
  lookupCatalog,
  readStoredInterests,
  writeTagIndexChanges,
  type InterestStore,
} from '@pstream/interest-store';
import {
  BatchConsumer,
  classifyFailure,
  consumerTuning,
  counter,
  createKeyring,
  type Consumed,
  type FailureKind,
  type Logger,
  type Pool,
  type Registry,
} from '@pstream/platform';
import { suppressedAmong } from '@pstream/profile-store';
import { targetTag } from '@pstream/scoring';
import type { Redis } from '@pstream/platform';
import type { Kafka } from 'kafkajs';
import { storeOptions, type ScorerConfig } from './config';
import { prepareEvent } from './score';

export type ScorerDeps = { kafka: Kafka; redis: Redis; pool: Pool; log: Logger; metrics?: Registry };

/** The ids among these that an erasure suppressed (docs/api.md §5.7). */
export type SuppressionCheck = (ids: string[]) => Promise<Set<string>>;
const nothingSuppressed: SuppressionCheck = () => Promise.resolve(new Set());

export type ScorerOptions = {
  /** Consumer group (default SCORER_GROUP); the rebuild uses a temporary one. */
  groupId?: string;
};

/**
 * Applies one chunk of messages in partition order: runs of events go to Redis in one pipeline
 * (catalog tags fetched first, in one round trip, for events without tags); an identify or alias
 * that links two ids (`linkOf`, the identity rule of the topic contract) is a merge, done between
 * the events before and after it. Resolves with how many events were duplicates (their dedupe
 * record existed).
 *
 * Erasure (§5.7): the suppression list is read once per chunk, before (messages naming an erased
 * id are dropped) and once after the writes. An erasure that committed in between may have
 * cleared Redis before this chunk's writes landed, so the ids it suppressed are cleared again
 * here: whichever of the two clean-ups runs last runs after every write of the chunk.
 */
export function createChunkApplier(
  store: InterestStore,
  redis: Redis,
  _config: ScorerConfig,
  log: Logger,
  suppressed: SuppressionCheck = nothingSuppressed,
  metrics?: Registry,
) {
  const late =
    metrics &&
    counter(metrics, {
      name: 'scorer_late_events_total',
      help: 'Applied events that arrived behind a newer one of their person: reordered (within the lateness window, put in their place) or beyond_window (applied on their own)',
      labelNames: ['outcome'] as const,
    });
  const refusedLinks =
    metrics &&
    counter(metrics, {
      name: 'scorer_links_refused_total',
      help: 'Identity links refused, by reason (merged_id_cap: the profile would pass MAX_MERGED_IDS merged ids)',
      labelNames: ['reason'] as const,
    });
  const applyEvents = async (events: ProfileEvent[]): Promise<number> => {
    if (events.length === 0) return 0;
    const tagless = events.filter((e) => e.tags.length === 0).map((e) => targetTag(e.target));
    const catalog = await lookupCatalog(redis, store.keys, tagless);
    const prepared = events.map((e) => prepareEvent(e, catalog));
    // the store also brings the per-tag index up to date with what the events changed
    const { duplicates, arrivals } = await store.apply(prepared);
    if (arrivals.reordered > 0) late?.inc({ outcome: 'reordered' }, arrivals.reordered);
    if (arrivals.beyond_window > 0) {
      late?.inc({ outcome: 'beyond_window' }, arrivals.beyond_window);
      log.info(
        { events: arrivals.beyond_window },
        'events more than the lateness window behind their person applied on their own',
      );
    }
    return duplicates;
  };
  const applyMessages = async (messages: TopicMessage[]): Promise<{ duplicates: number }> => {
    let duplicates = 0;
    let run: ProfileEvent[] = [];
    for (const m of messages) {
      if (m.kind === 'event') {
        run.push(m);
        continue;
      }
      const link = linkOf(m);
      if (!link) continue;
      duplicates += await applyEvents(run);
      run = [];
      // the merged id leaves every tag index; the receiver's scores change on its imported tags
      const people = [link.from, await store.resolve(link.to)];
      const before = await readStoredInterests(redis, store.keys, people);
      const { mergedInto, refused } = await store.merge(link.from, link.to);
      if (refused) {
        log.warn(
          {
            kind: m.kind,
            profile: refused.profile,
            id: link.from,
            mergedIds: refused.merged,
            incoming: refused.incoming,
            cap: refused.cap,
          },
          'link refused: the profile would pass the merged-id cap',
        );
        refusedLinks?.inc({ reason: 'merged_id_cap' });
        continue;
      }
      const after = await readStoredInterests(redis, store.keys, [
        ...new Set([...people, ...(mergedInto === undefined ? [] : [mergedInto])]),
      ]);
      await writeTagIndexChanges(redis, store.keys, before, after);
      if (mergedInto !== undefined && mergedInto !== link.to) {
        log.info({ source: link.from, target: link.to, mergedInto }, 'profile already merged elsewhere');
      }
    }
    duplicates += await applyEvents(run);
    return { duplicates };
  };
  return async (chunk: TopicMessage[]): Promise<{ duplicates: number }> => {
    const named = [...new Set(chunk.flatMap(idsNamedBy))];
    const before = await suppressed(named);
    const messages = before.size === 0 ? chunk : chunk.filter((m) => !idsNamedBy(m).some((id) => before.has(id)));
    if (messages.length < chunk.length)
      log.info({ dropped: chunk.length - messages.length }, 'messages of erased people dropped');
    const result = await applyMessages(messages);
    const erasedMeanwhile = [...(await suppressed(named))].filter((id) => !before.has(id));
    if (erasedMeanwhile.length > 0) await eraseInterests(redis, store.keys, erasedMeanwhile);
    return result;
  };
}

/** Reply prefixes of a Redis that is busy, starting, full or failing over: they heal, so they are retried. */
const TRANSIENT_REPLIES =
  /^(OOM|BUSY|LOADING|READONLY|NOSCRIPT|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|MOVED|ASK|NOREPLICAS)\b/;

/**
 * Poison or transient, for the batch consumer. An error raised while running our script (Redis
 * tags it `… script: <sha>, on @user_script:<line>`: a Lua runtime error, or WRONGTYPE from a
 * call inside it) comes from the event's data or the person's stored state and never heals; OOM,
 * BUSY, LOADING, READONLY (failover) and the like heal, as do lost connections, so they are retried.
 * CROSSSLOT (keys of one call in two Cluster slots) never heals either: poison.
 */
export function classifyScorerFailure(err: unknown): FailureKind {
  const e = err as { name?: unknown; message?: unknown } | null;
  if (
    e?.name === 'ReplyError' &&
    typeof e.message === 'string' &&
    /user_script:\d+/.test(e.message) &&
    !TRANSIENT_REPLIES.test(e.message)
  )
    return 'poison';
  // keys of one call in two slots: the key names (the person's id) are the cause, a retry meets the same
  if (e?.name === 'ReplyError' && typeof e.message === 'string' && e.message.startsWith('CROSSSLOT')) return 'poison';
  return classifyFailure(err);
}

/**
 * The scorer's stream processor: read (BatchConsumer) → validate (schema at the boundary) →
 * prepare (score.ts: catalog tags, forward factor) → write (one pipelined, per-event atomic
 * script; merges in between) → commit (after the write).
 */
export function createScorerConsumer(config: ScorerConfig, deps: ScorerDeps, options: ScorerOptions = {}) {
  const store = createInterestStore(deps.redis, config.REDIS_PREFIX, storeOptions(config));
  const applyChunk = createChunkApplier(
    store,
    deps.redis,
    config,
    deps.log,
    (ids) => suppressedAmong(deps.pool, ids),
    deps.metrics,
  );
  return new BatchConsumer({
    kafka: deps.kafka,
    log: deps.log,
    groupId: options.groupId ?? config.SCORER_GROUP,
    topic: config.EVENTS_TOPIC,
    dlqTopic: config.DLQ_TOPIC,
    schema: topicMessageSchema,
    fastParse: fastTopicMessage,
    keyring: createKeyring(config, deps.pool, deps.metrics),
    metrics: deps.metrics,
    classify: classifyScorerFailure,
    stallAfterMs: config.CONSUMER_STALL_SECONDS * 1000,
    partitionsConcurrently: config.SCORER_PARTITIONS_CONCURRENTLY,
    retryMaxMs: config.CONSUMER_RETRY_MAX_MS,
    ...consumerTuning(config),
    apply: (messages: Consumed<TopicMessage>[]) => applyChunk(messages.map((m) => m.value)),
  });
}
