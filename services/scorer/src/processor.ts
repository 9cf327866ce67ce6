import {
  addIdsNamedBy,
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
  BoundedMap,
  type ChunkPart,
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
import { idDigest, suppressedAmong } from '@pstream/profile-store';
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
 * Applies chunks of messages — one partition's, or those of several partitions one fetch brought
 * (BatchConsumer's `applyTogether`) — each in its partition order: runs of events go to Redis in
 * one store round for all chunks (catalog tags fetched first, in one round trip, for events
 * without tags); an identify or alias that links two ids (`linkOf`, the identity rule of the topic
 * contract) is a merge, done between its chunk's events before and after it. Resolves with how
 * many events were duplicates (their dedupe record existed).
 *
 * Erasure (§5.7): the suppression list is read once per call, before (messages naming an erased
 * id are dropped) and once after the writes. An erasure that committed in between may have
 * cleared Redis before this call's writes landed, so the ids it suppressed are cleared again
 * here: whichever of the two clean-ups runs last runs after every write of the call.
 */
export function createChunksApplier(
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
  /** An identify or alias that links two ids: a merge, with the per-tag index brought along. */
  const applyLink = async (m: TopicMessage): Promise<void> => {
    const link = linkOf(m)!;
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
      return;
    }
    const after = await readStoredInterests(redis, store.keys, [
      ...new Set([...people, ...(mergedInto === undefined ? [] : [mergedInto])]),
    ]);
    await writeTagIndexChanges(redis, store.keys, before, after);
    if (mergedInto !== undefined && mergedInto !== link.to) {
      log.info({ source: link.from, target: link.to, mergedInto }, 'profile already merged elsewhere');
    }
  };
  /**
   * The chunks' messages in waves: every chunk's events up to its next link go to the store in one
   * `apply` (their people are read in one pipeline and written in one), then those links are merged,
   * one chunk's concurrently with another's as partitions always were; then the next wave. Each chunk
   * stays in its order; messages that link nothing are skipped.
   */
  const applyMessages = async (chunks: readonly TopicMessage[][]): Promise<{ duplicates: number }> => {
    let duplicates = 0;
    let queues = chunks;
    while (queues.length > 0) {
      const run: ProfileEvent[] = [];
      const links: TopicMessage[] = [];
      const rest: TopicMessage[][] = [];
      for (const queue of queues) {
        let i = 0;
        for (; i < queue.length; i++) {
          const m = queue[i]!;
          if (m.kind === 'event') run.push(m);
          else if (linkOf(m)) break;
        }
        if (i < queue.length) {
          links.push(queue[i]!);
          if (i + 1 < queue.length) rest.push(queue.slice(i + 1));
        }
      }
      duplicates += await applyEvents(run);
      const merged = await Promise.allSettled(links.map(applyLink));
      const failed = merged.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
      queues = rest;
    }
    return { duplicates };
  };
  return async (chunks: readonly TopicMessage[][]): Promise<{ duplicates: number }> => {
    const ids = new Set<string>();
    for (const chunk of chunks) for (const m of chunk) addIdsNamedBy(m, ids);
    const named = [...ids];
    const before = await suppressed(named);
    const kept =
      before.size === 0
        ? chunks
        : chunks.map((chunk) => chunk.filter((m) => !idsNamedBy(m).some((id) => before.has(id))));
    const dropped = chunks.reduce((n, chunk, i) => n + chunk.length - kept[i]!.length, 0);
    if (dropped > 0) log.info({ dropped }, 'messages of erased people dropped');
    const result = await applyMessages(kept);
    const erasedMeanwhile = [...(await suppressed(named))].filter((id) => !before.has(id));
    if (erasedMeanwhile.length > 0) await eraseInterests(redis, store.keys, erasedMeanwhile);
    return result;
  };
}

/** createChunksApplier for one chunk (tests and tools that apply a partition's chunk alone). */
export function createChunkApplier(...args: Parameters<typeof createChunksApplier>) {
  const applyChunks = createChunksApplier(...args);
  return (chunk: TopicMessage[]): Promise<{ duplicates: number }> => applyChunks([chunk]);
}

/** How many ids' suppression-list digests a scorer keeps (≈ 150 B each). */
const DIGESTS_KEPT = 50_000;

/**
 * `digest` remembered for the last `size` ids (oldest first out): every call asks the suppression list
 * about its ids before and after its writes, and live traffic names the same people again and again.
 */
export function memoDigest(digest: (id: string) => string, size: number): (id: string) => string {
  const kept = new BoundedMap<string, string>(size);
  return (id) => {
    let d = kept.get(id);
    if (d === undefined) {
      d = digest(id);
      kept.set(id, d);
    }
    return d;
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
  const digests = memoDigest(idDigest, DIGESTS_KEPT);
  const store = createInterestStore(deps.redis, config.REDIS_PREFIX, storeOptions(config));
  const applyChunks = createChunksApplier(
    store,
    deps.redis,
    config,
    deps.log,
    (ids) => suppressedAmong(deps.pool, ids, digests),
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
    apply: (messages: Consumed<TopicMessage>[]) => applyChunks([messages.map((m) => m.value)]),
    // the chunks of one fetch in one store round (reads pipelined, then writes pipelined)
    applyTogether: (parts: ChunkPart<TopicMessage>[]) => applyChunks(parts.map((p) => p.messages.map((m) => m.value))),
  });
}
