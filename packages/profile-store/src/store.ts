import {
  addIdsNamedBy,
  idsNamedBy,
  linkOf,
  linkPassesMergedIdCap,
  MAX_MERGED_IDS,
  type ProfileEvent,
  type TopicMessage,
} from '@pstream/events';
import type { LifecycleRules } from '@pstream/lifecycle';
import type { Logger, Pool, PoolClient } from '@pstream/platform';
import { touchIds } from './audience-watch';
import { applyEventRows, keepUnseen } from './facts';
import { foldEvents, type Converter } from './fold';
import { idsOf, lockIdentities, mergedIdCounts, mergeProfiles, storeTraits } from './identity';
import { evaluatePeople, type Cause, type FactGain, type Transition } from './lifecycle';
import { suppressedAmong } from './privacy';
import { ANALYZE_PER_PASS, analyzeStale, pruneExpired, vacuumQueues, type Retention } from './retention';
import { inTransaction } from './tx';

/** Where a chunk of messages came from: the consumer position it moves. */
export type Position = { groupId: string; topic: string; partition: number; lastOffset: string };
export type Offsetted = { value: TopicMessage; offset: string };
/** One partition's chunk: its messages and the position it moves. */
export type Part = { messages: readonly Offsetted[]; at: Position };
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
  /**
   * Records the ids the applied messages name in `audience_touched`, in the chunk's transaction, for the
   * saved audiences' sweep (audience-watch.ts); only a segmenter that keeps audiences current needs it.
   */
  touchAudiences?: boolean;
};

/**
 * The segmenter's Postgres side. A chunk of messages — or the chunks of several partitions — its
 * effects and the consumer positions after it commit in ONE transaction; messages at or below the
 * stored position are skipped, so a redelivery (crash before Kafka's commit, rebalance, zombie member)
 * has no second effect.
 */
export function createSegmentStore(options: StoreOptions) {
  const { pool, rules, convert, log } = options;
  const cap = options.maxMergedIds ?? MAX_MERGED_IDS;
  const tx = <T>(fn: (client: PoolClient) => Promise<T>) =>
    inTransaction(pool, fn, { log, isStopping: options.isStopping, deadlineMs: options.retryDeadlineMs });

  const touch = options.touchAudiences ?? false;

  /**
   * Several partitions' chunks in ONE transaction: every position row locked (in key order), the new
   * messages of all of them applied together, every position moved; a part at or below its stored
   * position has no effect.
   */
  const applyParts = (parts: readonly Part[], nowMs: number): Promise<ApplyResult> =>
    tx(async (client) => {
      const next = await lockPositions(
        client,
        parts.map((p) => p.at),
      );
      const fresh: TopicMessage[] = [];
      const moved = new Map<string, Position>();
      for (const { messages, at } of parts) {
        const key = positionKey(at);
        const from = next.get(key)!;
        for (const m of messages) if (BigInt(m.offset) >= from) fresh.push(m.value);
        // Moving the position past DLQ'd messages at the chunk's end too.
        if (BigInt(at.lastOffset) >= from) {
          next.set(key, BigInt(at.lastOffset) + 1n);
          moved.set(key, at);
        }
      }
      const { transitions, refusedLinks } =
        fresh.length > 0
          ? await applyMessages(client, fresh, nowMs, { rules, convert, log, cap, touch })
          : { transitions: [], refusedLinks: 0 };
      if (moved.size > 0)
        await storePositions(
          client,
          [...moved].map(([key, at]) => ({ ...at, next: next.get(key)! })),
        );
      const total = parts.reduce((n, p) => n + p.messages.length, 0);
      return { applied: fresh.length, skipped: total - fresh.length, transitions, refusedLinks };
    });

  return {
    applyParts,

    /** One partition's chunk, its effects and its position in one transaction (`applyParts` of one part). */
    apply(messages: readonly Offsetted[], at: Position, nowMs: number): Promise<ApplyResult> {
      return applyParts([{ messages, at }], nowMs);
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
     * the tables whose statistics are stale, in turn, for about 100 ms a pass (retention.ts,
     * `ANALYZE_PER_PASS`).
     */
    async prune(nowMs: number, keep: Retention) {
      const pruned = await pruneExpired(pool, nowMs, keep);
      await vacuumQueues(pool);
      const analyzed = await analyzeStale(pool, ANALYZE_PER_PASS);
      if (analyzed.length > 0) log.debug({ analyzed }, 'retention: analyzed tables with stale statistics');
      return pruned;
    },
  };
}

export type SegmentStore = ReturnType<typeof createSegmentStore>;

const positionKey = (at: Pick<Position, 'groupId' | 'topic' | 'partition'>) =>
  `${at.groupId}\u0000${at.topic}\u0000${at.partition}`;

/**
 * Creates and locks the position rows of `positions`, in key order (two transactions locking some of
 * the same rows cannot deadlock on them): a second member applying the same partition waits here.
 * Answers each one's next offset by `positionKey`. The rows exist after a partition's first chunk,
 * so they are locked and read first (one statement); only when some are missing are they created
 * and the lock taken again.
 */
async function lockPositions(client: PoolClient, positions: readonly Position[]): Promise<Map<string, bigint>> {
  const distinct = [...new Map(positions.map((at) => [positionKey(at), at])).values()];
  const columns = [
    distinct.map((at) => at.groupId),
    distinct.map((at) => at.topic),
    distinct.map((at) => at.partition),
  ];
  const lock = () =>
    client.query<{ group_id: string; topic: string; partition: number; next_offset: number }>(
      `SELECT c.group_id, c.topic, c.partition, c.next_offset FROM consumer_offsets c
       JOIN unnest($1::text[], $2::text[], $3::int[]) AS x(g, t, p) ON c.group_id = x.g AND c.topic = x.t AND c.partition = x.p
       ORDER BY c.group_id, c.topic, c.partition FOR UPDATE OF c`,
      columns,
    );
  let { rows } = await lock();
  if (rows.length < distinct.length) {
    await client.query(
      `INSERT INTO consumer_offsets (group_id, topic, partition, next_offset)
       SELECT g, t, p, 0 FROM unnest($1::text[], $2::text[], $3::int[]) AS x(g, t, p) ORDER BY g, t, p
       ON CONFLICT DO NOTHING`,
      columns,
    );
    ({ rows } = await lock());
  }
  return new Map(
    rows.map((r) => [
      positionKey({ groupId: r.group_id, topic: r.topic, partition: r.partition }),
      BigInt(r.next_offset),
    ]),
  );
}

/** Stores the next offset of each position (rows locked by `lockPositions`). */
async function storePositions(client: PoolClient, positions: readonly (Position & { next: bigint })[]): Promise<void> {
  await client.query(
    `UPDATE consumer_offsets c SET next_offset = x.n, updated_at = now()
     FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[]) AS x(g, t, p, n)
     WHERE c.group_id = x.g AND c.topic = x.t AND c.partition = x.p`,
    [
      positions.map((at) => at.groupId),
      positions.map((at) => at.topic),
      positions.map((at) => at.partition),
      positions.map((at) => at.next.toString()),
    ],
  );
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
  {
    rules,
    convert,
    log,
    cap,
    touch,
  }: { rules: LifecycleRules; convert: Converter; log: Logger; cap: number; touch: boolean },
): Promise<{ transitions: Transition[]; refusedLinks: number }> {
  const nowIso = new Date(nowMs).toISOString();
  const canonical = await lockIdentities(client, idsOf(chunk));
  // Erased ids (§5.7), checked once per chunk AFTER the identity rows are locked: an erasure
  // holds the same rows, so it either committed before this read (and is seen) or waits for
  // this transaction (and deletes what it wrote). Their messages have no effect at all.
  // Each id once: a person's id recurs in most of their messages, and each is hashed (idDigest).
  const named = new Set<string>();
  for (const m of chunk) addIdsNamedBy(m, named);
  const suppressed = await suppressedAmong(client, named);
  let messages = chunk;
  if (suppressed.size > 0) {
    await client.query('DELETE FROM identities WHERE id = ANY($1::text[])', [[...suppressed]]);
    for (const id of suppressed) canonical.delete(id);
    messages = chunk.filter((m) => !idsNamedBy(m).some((id) => suppressed.has(id)));
    log.info({ dropped: chunk.length - messages.length }, 'messages of erased people dropped');
  }
  // After the identity rows, as an erasure takes them before it deletes touched ids (no lock cycle).
  if (touch) await touchIds(client, messages.flatMap(idsNamedBy), nowMs);
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
