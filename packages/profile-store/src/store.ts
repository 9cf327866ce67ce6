import {
  idsNamedBy,
  linkOf,
  linkPassesMergedIdCap,
  MAX_MERGED_IDS,
  type ProfileEvent,
  type TopicMessage,
} from '@pstream/events';
import type { LifecycleRules } from '@pstream/lifecycle';
import type { Logger, Pool, PoolClient } from '@pstream/platform';
import { applyEventRows, keepUnseen } from './facts';
import { foldEvents, type Converter } from './fold';
import { idsOf, lockIdentities, mergedIdCounts, mergeProfiles, storeTraits } from './identity';
import { evaluatePeople, type Cause, type FactGain, type Transition } from './lifecycle';
import { suppressedAmong } from './privacy';
import { analyzeStale, pruneExpired, vacuumQueues, type Retention } from './retention';
import { inTransaction } from './tx';

/** Where a chunk of messages came from: the consumer position it moves. */
export type Position = { groupId: string; topic: string; partition: number; lastOffset: string };
export type Offsetted = { value: TopicMessage; offset: string };
/** `refusedLinks`: links refused by the merged-id cap (docs/model.md §4.4), to count once the chunk committed. */
export type ApplyResult = { applied: number; skipped: number; transitions: Transition[]; refusedLinks: number };

export type StoreOptions = {
  pool: Pool;
  rules: LifecycleRules;
  convert: Converter;
  log: Logger;
  isStopping?: () => boolean;
  retryDeadlineMs?: number;
  /** MAX_MERGED_IDS (docs/model.md §4.4); default the shared MAX_MERGED_IDS. */
  maxMergedIds?: number;
};

/**
 * The segmenter's Postgres side. A chunk of messages, its effects and the consumer position
 * after it commit in ONE transaction; messages at or below the stored position are skipped, so a
 * redelivery (crash before Kafka's commit, rebalance, zombie member) has no second effect.
 */
export function createSegmentStore(options: StoreOptions) {
  const { pool, rules, convert, log } = options;
  const cap = options.maxMergedIds ?? MAX_MERGED_IDS;
  const tx = <T>(fn: (client: PoolClient) => Promise<T>) =>
    inTransaction(pool, fn, { log, isStopping: options.isStopping, deadlineMs: options.retryDeadlineMs });

  return {
    async apply(messages: readonly Offsetted[], at: Position, nowMs: number): Promise<ApplyResult> {
      return tx(async (client) => {
        const next = await lockPosition(client, at);
        const fresh = messages.filter((m) => BigInt(m.offset) >= next);
        const { transitions, refusedLinks } =
          fresh.length > 0
            ? await applyMessages(
                client,
                fresh.map((m) => m.value),
                nowMs,
                { rules, convert, log, cap },
              )
            : { transitions: [], refusedLinks: 0 };
        // Moving the position past DLQ'd messages at the chunk's end too.
        if (BigInt(at.lastOffset) >= next) {
          await client.query(
            'UPDATE consumer_offsets SET next_offset = $4, updated_at = now() WHERE group_id = $1 AND topic = $2 AND partition = $3',
            [at.groupId, at.topic, at.partition, (BigInt(at.lastOffset) + 1n).toString()],
          );
        }
        return { applied: fresh.length, skipped: messages.length - fresh.length, transitions, refusedLinks };
      });
    },

    /** The stored positions of `partitions`, to seek to on assignment. */
    async positions(groupId: string, topic: string, partitions: number[]): Promise<Map<number, string>> {
      const { rows } = await pool.query<{ partition: number; next_offset: number }>(
        'SELECT partition, next_offset FROM consumer_offsets WHERE group_id = $1 AND topic = $2 AND partition = ANY($3::int[])',
        [groupId, topic, partitions],
      );
      return new Map(rows.map((r) => [r.partition, String(r.next_offset)]));
    },

    /**
     * Applies stage and tier changes caused by time: re-evaluates only people whose indexed
     * next_review_at has come, `batch` per transaction; SKIP LOCKED lets several segmenters sweep
     * side by side and never waits on a batch being applied.
     */
    async sweep(nowMs: number, batch: number): Promise<{ reviewed: number; transitions: Transition[] }> {
      let reviewed = 0;
      const transitions: Transition[] = [];
      for (;;) {
        const round = await tx(async (client) => {
          const { rows } = await client.query<{ profile_key: string }>(
            `SELECT profile_key FROM people WHERE next_review_at <= $1
             ORDER BY next_review_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
            [new Date(nowMs).toISOString(), batch],
          );
          const causes = new Map<string, Cause>(rows.map((r) => [r.profile_key, 'time']));
          return { n: rows.length, changes: await evaluatePeople(client, causes, nowMs, rules) };
        });
        reviewed += round.n;
        transitions.push(...round.changes);
        if (round.n < batch) return { reviewed, transitions };
      }
    },

    /**
     * Forgets expired dedupe records and daily aggregates, vacuums the queue tables, then analyzes
     * the tables whose statistics are stale (retention.ts).
     */
    async prune(nowMs: number, keep: Retention) {
      const pruned = await pruneExpired(pool, nowMs, keep);
      await vacuumQueues(pool);
      const analyzed = await analyzeStale(pool);
      if (analyzed.length > 0) log.debug({ analyzed }, 'retention: analyzed tables with stale statistics');
      return pruned;
    },
  };
}

export type SegmentStore = ReturnType<typeof createSegmentStore>;

/** Creates and locks the position row: a second member applying the same partition waits here. */
async function lockPosition(client: PoolClient, at: Position): Promise<bigint> {
  await client.query(
    'INSERT INTO consumer_offsets (group_id, topic, partition, next_offset) VALUES ($1, $2, $3, 0) ON CONFLICT DO NOTHING',
    [at.groupId, at.topic, at.partition],
  );
  const { rows } = await client.query<{ next_offset: number }>(
    'SELECT next_offset FROM consumer_offsets WHERE group_id = $1 AND topic = $2 AND partition = $3 FOR UPDATE',
    [at.groupId, at.topic, at.partition],
  );
  return BigInt(rows[0]!.next_offset);
}

/**
 * Applies new messages in the caller's transaction: identities first (locks, then merges and
 * traits in message order), then all events at once. Facts combine commutatively (sums, min,
 * max, unions, latest-by-event-time), so applying a batch's merges before its events gives the
 * same result as message order.
 */
async function applyMessages(
  client: PoolClient,
  chunk: TopicMessage[],
  nowMs: number,
  { rules, convert, log, cap }: { rules: LifecycleRules; convert: Converter; log: Logger; cap: number },
): Promise<{ transitions: Transition[]; refusedLinks: number }> {
  const nowIso = new Date(nowMs).toISOString();
  const canonical = await lockIdentities(client, idsOf(chunk));
  // Erased ids (§5.7), checked once per chunk AFTER the identity rows are locked: an erasure
  // holds the same rows, so it either committed before this read (and is seen) or waits for
  // this transaction (and deletes what it wrote). Their messages have no effect at all.
  const suppressed = await suppressedAmong(client, chunk.flatMap(idsNamedBy));
  let messages = chunk;
  if (suppressed.size > 0) {
    await client.query('DELETE FROM identities WHERE id = ANY($1::text[])', [[...suppressed]]);
    for (const id of suppressed) canonical.delete(id);
    messages = chunk.filter((m) => !idsNamedBy(m).some((id) => suppressed.has(id)));
    log.info({ dropped: chunk.length - messages.length }, 'messages of erased people dropped');
  }
  const resolve = (id: string) => canonical.get(id) ?? id;
  const causes = new Map<string, Cause>();
  let refusedLinks = 0;
  const repoint = (from: string, to: string) => {
    for (const [id, key] of canonical) if (key === from) canonical.set(id, to);
    causes.delete(from);
  };
  /**
   * Merges `fromId`'s person into `user`'s, by the identity rule of the topic contract
   * (`linkOf`): the first link of an id wins, so an id already linked to another person is not
   * re-linked by a later identify or alias (logged). test/identity.int.test.ts feeds one stream to
   * both stores and compares the outcome with Redis's aliases.
   */
  const link = async (fromId: string, user: string, m: TopicMessage) => {
    const from = resolve(fromId);
    if (from === user) return;
    if (from !== fromId) {
      log.warn(
        { kind: m.kind, userId: m.userId, id: fromId, linkedTo: from },
        'id already linked to another person, not re-linked',
      );
      return;
    }
    const counts = await mergedIdCounts(client, from, user);
    if (linkPassesMergedIdCap(counts.merged, counts.incoming, cap)) {
      log.warn(
        { kind: m.kind, profile: user, id: from, mergedIds: counts.merged, incoming: counts.incoming, cap },
        'link refused: the profile would pass the merged-id cap',
      );
      refusedLinks++;
      return;
    }
    await mergeProfiles(client, from, user);
    repoint(from, user);
    if (!causes.has(user)) causes.set(user, 'merge');
  };
  for (const m of messages) {
    if (m.kind === 'event') continue;
    const user = resolve(m.userId);
    const ids = linkOf(m);
    if (ids) await link(ids.from, user, m);
    if (m.kind === 'identify') {
      await storeTraits(client, user, m.traits, nowIso);
      if (!causes.has(user)) causes.set(user, 'merge');
    }
  }
  const gains = new Map<string, FactGain>();
  const events = await keepUnseen(
    client,
    messages.filter((m): m is ProfileEvent => m.kind === 'event'),
  );
  if (events.length > 0) {
    const keyed = events.map((event) => ({ key: resolve(event.profileKey), event }));
    const rows = foldEvents(keyed, convert);
    const purchases = await applyEventRows(client, rows);
    for (const p of rows.people)
      gains.set(p.key, {
        firstSeen: p.firstSeen,
        lastActive: p.lastActive,
        social: p.social,
        purchases: purchases.get(p.key),
      });
    for (const { key } of keyed) causes.set(key, 'event');
  }
  return { transitions: await evaluatePeople(client, causes, nowMs, rules, gains), refusedLinks };
}
