import { linkPassesMergedIdCap, MAX_ALIAS_HOPS, MAX_MERGED_IDS, type EventType } from '@pstream/events';
import { AppError, BoundedMap, isCluster, pipelineBySlot, scanKeys, type Redis } from '@pstream/platform';
import {
  addOwnedEvents,
  advanceTipInPlace,
  emptyModel,
  emptyState,
  mergeStates,
  replayModel,
  type Arrival,
  type PersonModel,
  type PersonState,
  type ScoreLog,
  type ScoringParams,
  type TimedEvent,
  type TimelineParams,
} from '@pstream/scoring';
import type { ChainableCommander, Result } from 'ioredis';
import { aliasLoop, InterestStoreErrors } from './errors';
import { keys as keyLayout, type Keys, type PersonKeys, type TagLayout } from './keys';
import {
  FREEZE_SCRIPT,
  GUARDED_WRITE,
  LEAN_WRITE,
  LEGACY_READ_SCRIPT,
  READ_IF_CHANGED,
  VERSIONS_CHANGED,
} from './scripts';
import {
  decodeState,
  digestOf,
  encodePacked,
  encodeState,
  encodeTail,
  legacyState,
  loggedDiff,
  newestSeen,
  noteSeen,
  scoreDiff,
  seenSpan,
  trimSeen,
  trimSeenSpanned,
  type Packed,
  type ScoreDiff,
  type Seen,
  type SeenSpan,
} from './state';
import { readStoredInterests } from './read';
import { writeTagIndex, type TagChange } from './tag-index';

/** One event ready for the store: classified, tagged (pure, in the scorer). */
export type PreparedEvent = {
  profileKey: string;
  /** Dedupe member: `source|` + the shared dedupe id (`eventId@profileKey`, see @pstream/events dedupeId). */
  member: string;
  /**
   * The member an older version recorded for the same event (`source|eventId`), also looked for
   * so an upgrade does not re-apply events redelivered right after it; '' or absent for none.
   * Such records expire with the dedupe window, and only a person whose state may still hold one
   * (`legacyUntil`, state.ts) has it looked for: a state begun by this version never does.
   */
  legacyMember?: string;
  receivedMs: number;
  type: string;
  occurredMs: number;
  /** `type:id` of the target: its implicit tag and the key of its visit / follow records. */
  targetKey: string;
  dwellMs: number | undefined;
  /** Explicit tags (event's own or the catalog's), once each, without the implicit tag. */
  tags: string[];
};

export type StoreLimits = {
  /** Interest tags kept per person; beyond it the lowest stored scores are dropped. */
  maxTagsPerPerson: number;
  /** W: how far (event time) behind a person's newest applied event an event still takes its place. */
  latenessMs: number;
};

export type StoreOptions = StoreLimits & {
  scoring: ScoringParams;
  /** How long applied event ids are remembered (dedupe window). */
  dedupeWindowMs: number;
  /** Replicas that must have a batch's writes before `apply` resolves (Redis WAIT; 0 = none). */
  waitReplicas?: number;
  /**
   * MAX_MERGED_IDS (docs/model.md §4.4): most ids one profile takes in by merges; default the shared MAX_MERGED_IDS.
   */
  maxMergedIds?: number;
  /** TAG_INDEX_BUCKETS: the per-tag index of tags written from now on in listpack buckets by a hash of the person (tag-index.ts). */
  tagIndexBuckets?: boolean;
  /** TAG_INDEX_LAYOUT: the layout of tags with no index yet (default `range`, tag-range.ts; Keys.tagLayout). */
  tagIndexLayout?: TagLayout;
};

/**
 * What a merge did: where the source now points (undefined: nothing merged), or, when the
 * merged-id cap refused the link, the counts it refused on (ids already merged into `profile`,
 * ids the link would have brought, the cap).
 */
export type MergeResult = {
  mergedInto: string | undefined;
  refused?: { profile: string; merged: number; incoming: number; cap: number };
};

export type ApplyResult = {
  applied: number;
  duplicates: number;
  redirected: number;
  /** Applied events by how they arrived (timeline.ts Arrival). */
  arrivals: Record<Arrival, number>;
};

/** GUARDED_WRITE's reply. */
type GuardReply = number | [number, string];

declare module 'ioredis' {
  interface RedisCommander<Context> {
    pstreamGuardedWrite(...args: (string | number | Buffer)[]): Result<GuardReply, Context>;
    pstreamLeanWrite(
      state: string,
      alias: string,
      expected: string,
      value: Buffer,
      appendUnder: string,
    ): Result<GuardReply, Context>;
    pstreamFreeze(alias: string, target: string): Result<string, Context>;
    pstreamVersionsChanged(numberOfKeys: number, ...keysThenVersions: string[]): Result<(number | string)[], Context>;
    pstreamReadIfChanged(state: string, version: string): Result<1 | string | null, Context>;
    pstreamReadIfChangedBuffer(state: string, version: string): Result<1 | Buffer | null, Context>;
    pstreamLegacyRead(
      interests: string,
      visits: string,
      follows: string,
      seen: string,
    ): Result<[string[], string[], string[], string[]], Context>;
  }
}

/** Rounds of read → compute → guarded write before a chunk gives up (another writer kept winning). */
const MAX_ROUNDS = 20;
/**
 * At most this many people's keys in one MGET of states or one VERSIONS_CHANGED call: a command runs alone on the
 * server, so a catch-up's thousands of people go as several, and other clients' commands (profile reads) run between
 * them (the index write's calls are bounded the same way, docs/operations.md).
 */
const KEYS_PER_COMMAND = 250;
/** `xs` cut into consecutive slices of at most `size`. */
const slices = <T>(xs: readonly T[], size: number): T[][] =>
  Array.from({ length: Math.ceil(xs.length / size) }, (_, i) => xs.slice(i * size, (i + 1) * size));

/**
 * People whose last written state a store keeps decoded in memory. Not a few KB each: a decoded state holds the
 * person's events of the last W (their event log, scoring event-log.ts), a dedupe record a recent event, its string
 * table and the replayed model — ≈ 110 KB for a person with 400 events in W (bench/state-heap.micro.ts), so a full
 * cache of busy people is a heap of about a gigabyte (BENCHMARKS.md "Scorer").
 */
const CACHED_PEOPLE = 10_000;

/**
 * A write appends a tail (state.ts encodeTail) while the tails together stay within this share of
 * the whole state's bytes, and writes the whole state again (compacts) past it: the encoding cost
 * follows the chunk, and a state is at most this much larger than its compacted form.
 */
const TAIL_SHARE = 0.5;

/**
 * A person as read from Redis for one round: state, dedupe record, and the interests they give
 * (`tip.interests`: the replayed model, which the next events in order continue; timeline.ts advanceTip).
 */
type Read = {
  version: string;
  state: PersonState;
  seen: Seen;
  tip: PersonModel;
  legacy: boolean;
  packed?: Packed;
  /** StoredState.legacyUntil: records up to this receive time may be an older version's members. */
  legacyUntil: number;
  /** `seen`'s span (state.ts SeenSpan), once a round has trimmed it; undefined: not known. */
  span?: SeenSpan;
};

/**
 * What one guarded write carries; `tail`: what the chunk added (state.ts encodeTail), written
 * instead of the whole state while the stored tails stay within TAIL_SHARE.
 */
type Write = {
  person: string;
  read: Read;
  tip: PersonModel;
  mergeSource: string;
  mergedIds: string[];
  tail?: Buffer;
  /**
   * The scores the events changed, when the caller has them (computed here otherwise): `scoreDiff` of the tip read
   * and `tip`, or `loggedDiff` of `before` when `tip` was advanced in place (read.tip is then tip itself).
   */
  diff?: ScoreDiff;
  /**
   * The changed tags' scores before the events, when `tip` is `read.tip` advanced in place (timeline.ts
   * advanceTipInPlace): `read.tip.interests` then holds the scores after them.
   */
  before?: ScoreLog;
};

/**
 * Whether a write can go through LEAN_WRITE (scripts.ts): the person's own events over a stored state that carries
 * its scores, no merge. Anything else (no state yet, the layout before event time, a state without scores, an
 * import) goes through GUARDED_WRITE.
 */
function leanWrite(w: Write): boolean {
  return (
    w.mergeSource === '' &&
    w.mergedIds.length === 0 &&
    w.read.version !== '' &&
    !w.read.legacy &&
    w.read.packed?.scores === true
  );
}

function newVersion(): string {
  return Math.floor(Math.random() * 2 ** 48).toString(36);
}

/**
 * The scorer's Redis model (see README for the key layout and the exactly-once argument). Per
 * person, one state string holds what §4.1 needs to score by event time (packages/scoring
 * timeline.ts) and the dedupe record; a chunk reads it once, replays the person's events in
 * TypeScript and writes it back once, with the changed interest scores, through one guarded write.
 */
export function createInterestStore(redis: Redis, prefix: string, options: StoreOptions) {
  const k = keyLayout(prefix, { tagBuckets: options.tagIndexBuckets ?? false, tagLayout: options.tagIndexLayout });
  const params = timelineParams(options);
  if (typeof (redis as Partial<Redis>).pstreamGuardedWrite !== 'function') {
    redis.defineCommand('pstreamGuardedWrite', { numberOfKeys: 7, lua: GUARDED_WRITE });
    redis.defineCommand('pstreamLeanWrite', { numberOfKeys: 2, lua: LEAN_WRITE });
    redis.defineCommand('pstreamFreeze', { numberOfKeys: 1, lua: FREEZE_SCRIPT });
    redis.defineCommand('pstreamVersionsChanged', { lua: VERSIONS_CHANGED });
    redis.defineCommand('pstreamLegacyRead', { numberOfKeys: 4, lua: LEGACY_READ_SCRIPT });
    redis.defineCommand('pstreamReadIfChanged', { numberOfKeys: 1, lua: READ_IF_CHANGED });
  }
  /**
   * People's states as this process last wrote them (oldest first), so an unchanged one is neither sent nor decoded
   * again.
   */
  const cache = new BoundedMap<string, Read>(CACHED_PEOPLE);

  /** Follows alias records from `id` to the profile that holds its state now. */
  async function resolve(id: string): Promise<string> {
    let current = id;
    for (let hop = 0; hop < MAX_ALIAS_HOPS; hop++) {
      const next = await redis.get(k.alias(current));
      if (next === null) return current;
      current = next;
    }
    throw aliasLoop(`alias chain from ${id} longer than ${MAX_ALIAS_HOPS} hops`);
  }

  /**
   * People's states, one GET each in one pipeline (one per node on a Cluster); a person without one reads as empty.
   * A state this store wrote last is taken from its cache: `optimistic`, as it is (the guarded write that follows
   * checks its version, and a refused write reads again), else only after `READ_IF_CHANGED` found its version
   * still stored (a read that nothing guards, such as a merge's source).
   */
  async function readPeople(people: readonly string[], optimistic = false): Promise<Map<string, Read>> {
    // a cached state is taken out while in use (put back only with a write that landed), so two
    // concurrent rounds of this process never share one mutable state
    const cached = people.map((person) => {
      const c = cache.get(person);
      cache.delete(person);
      return c;
    });
    const reads = new Map<string, Read>();
    const toRead: { person: string; c: Read | undefined }[] = [];
    people.forEach((person, i) => {
      const c = cached[i];
      if (optimistic && c) reads.set(person, c);
      else toRead.push({ person, c });
    });
    // states not held: one MGET on one server (a round's people, often hundreds), else a command each
    const replies: [Error | null, unknown][] =
      !isCluster(redis) && toRead.length > 0 && toRead.every(({ c }) => !c)
        ? (
            await Promise.all(
              slices(toRead, KEYS_PER_COMMAND).map((part) =>
                redis.mgetBuffer(...part.map(({ person }) => k.state(person))),
              ),
            )
          )
            .flat()
            .map((raw) => [null, raw])
        : await pipelineBySlot(
            redis,
            toRead,
            ({ person }) => k.state(person),
            (pipeline, { person, c }) => {
              if (c) pipeline.pstreamReadIfChangedBuffer(k.state(person), c.version);
              else pipeline.getBuffer(k.state(person));
            },
          );
    toRead.forEach(({ person, c }, i) => {
      const [err, raw] = replies[i] ?? [new Error('no reply'), undefined];
      if (err) throw err;
      if (raw === 1) reads.set(person, c!);
      else if (Buffer.isBuffer(raw)) {
        const { version, state, seen, packed, legacyUntil } = decodeState(raw, params);
        reads.set(person, {
          version,
          state,
          seen,
          tip: replayModel(state, params),
          legacy: false,
          packed,
          legacyUntil,
        });
      } else
        reads.set(person, {
          version: '',
          state: emptyState(),
          seen: new Map(),
          tip: emptyModel(),
          legacy: false,
          legacyUntil: -Infinity,
        });
    });
    return reads;
  }

  /** People still in the layout before event time, read from it (LEGACY_READ_SCRIPT), in one pipeline. */
  async function readLegacy(people: readonly string[]): Promise<Map<string, Read>> {
    const replies = await pipelineBySlot(
      redis,
      people,
      (person) => k.state(person),
      (pipeline, person) => {
        const p = k.person(person);
        pipeline.pstreamLegacyRead(p.interests, p.visits, p.follows, p.seen);
      },
    );
    const reads = new Map<string, Read>();
    people.forEach((person, i) => {
      const [err, reply] = replies[i] ?? [new Error('no reply'), undefined];
      if (err) throw err;
      const [interests, visits, follows, seen] = reply as [string[], string[], string[], string[]];
      const legacy = legacyState(interests, pairs(visits), pairs(follows), seen);
      // the diff starts from what `:int` holds (untrimmed)
      reads.set(person, {
        version: '',
        ...legacy,
        tip: { ...replayModel(legacy.state, params), interests: new Map(legacy.state.base.interests) },
        legacy: true,
        legacyUntil: newestSeen(legacy.seen),
      });
    });
    return reads;
  }

  /**
   * Runs guarded writes in one pipeline; returns each one's reply, and the index changes of those
   * written. A state written stays in this process' cache under its new version.
   */
  async function guardedWrites(writes: readonly Write[], changes: TagChange[]): Promise<GuardReply[]> {
    const versions = writes.map(() => newVersion());
    // a tail while the stored tails stay within their share, else the whole state (and its table, for later tails)
    const values = writes.map((w, i) => {
      const p = w.read.packed;
      if (w.tail && p && p.bytes + w.tail.length <= p.snapshotBytes * (1 + TAIL_SHARE))
        return { raw: w.tail, packed: { ...p, bytes: p.bytes + w.tail.length }, append: true };
      return {
        ...encodePacked(versions[i]!, w.read.state, w.read.seen, w.read.legacyUntil, w.tip.interests),
        append: false,
      };
    });
    const diffs = writes.map((w) => w.diff ?? scoreDiff(w.read.tip.interests, w.tip.interests));
    const replies = await pipelineBySlot(
      redis,
      writes.map((w, i) => ({ w, d: diffs[i]!, version: versions[i]!, value: values[i]! })),
      ({ w }) => k.state(w.person),
      (pipeline: ChainableCommander, { w, version, value }) => {
        const appendUnder = value.append ? version : '';
        if (leanWrite(w)) {
          pipeline.pstreamLeanWrite(k.state(w.person), k.alias(w.person), w.read.version, value.raw, appendUnder);
          return;
        }
        const p = k.person(w.person);
        pipeline.pstreamGuardedWrite(
          p.state,
          p.interests,
          p.alias,
          p.merged,
          p.visits,
          p.follows,
          p.seen,
          w.read.version,
          value.raw,
          w.mergeSource,
          // the scores are in the state (state.ts): nothing for `:int`, which the script removes
          0,
          0,
          w.mergedIds.length,
          w.read.legacy ? 'legacy' : '',
          appendUnder,
          ...w.mergedIds,
        );
      },
      { replicas: options.waitReplicas ?? 0 },
    );
    return writes.map((w, i) => {
      const [err, reply] = replies[i] ?? [new Error('no reply'), undefined];
      if (err) throw err;
      if (reply === 1) {
        cache.set(w.person, {
          version: versions[i]!,
          state: w.read.state,
          seen: w.read.seen,
          tip: w.tip,
          legacy: false,
          packed: values[i]!.packed,
          legacyUntil: w.read.legacyUntil,
          span: w.read.span,
        });
        const { tags, scores, removed } = diffs[i]!;
        const version = versions[i]!;
        // `old`: where the score-range index looks for the entry (the score this writer read)
        const was = (tag: string) => {
          const score = w.before?.has(tag) ? w.before.get(tag) : w.read.tip.interests.get(tag);
          return score === undefined ? null : String(score);
        };
        for (let j = 0; j < tags.length; j++) {
          const tag = tags[j]!;
          changes.push({ tag, person: w.person, score: String(scores[j]), version, old: was(tag) });
        }
        for (const tag of removed) changes.push({ tag, person: w.person, score: null, version, old: was(tag) });
      }
      return reply as GuardReply;
    });
  }

  /**
   * Imports `source`'s frozen state into `into` (or wherever `into` was merged since). Safe to
   * repeat and to race: the guarded write records `source` in the receiver's merged set in the
   * same step, and a frozen state never changes, so every attempt carries the same data.
   */
  async function importFrozen(source: string, into: string, changes: TagChange[]): Promise<void> {
    const [reads, merged] = await Promise.all([readPeople([source]), redis.smembers(k.person(source).merged)]);
    let from = reads.get(source)!;
    if (from.version === '') from = (await readLegacy([source])).get(source)!; // an empty layout reads as empty
    let target = into;
    let legacy: Read | undefined;
    for (let round = 0; round < MAX_ROUNDS + MAX_ALIAS_HOPS; round++) {
      if (await redis.sismember(k.person(target).merged, source)) return;
      const r = legacy ?? (await readPeople([target])).get(target)!;
      legacy = undefined;
      // the source's state is merged as a copy each attempt: decodeState gives fresh objects
      const copy = decodeState(encodeState('', from.state, from.seen), params);
      mergeStates(r.state, copy.state, params);
      for (const [digest, at] of copy.seen) r.seen.set(digest, at);
      r.span = undefined;
      r.legacyUntil = Math.max(r.legacyUntil, from.legacyUntil);
      if (trimSeen(r.seen, options.dedupeWindowMs) > r.legacyUntil) r.legacyUntil = -Infinity;
      const [reply] = await guardedWrites(
        [{ person: target, read: r, tip: replayModel(r.state, params), mergeSource: source, mergedIds: merged }],
        changes,
      );
      if (reply === 1 || reply === 3) return;
      if (reply === 4) legacy = (await readLegacy([target])).get(target)!;
      else if (Array.isArray(reply)) target = reply[1];
    }
    throw contention(`import of ${source} into ${into}`);
  }

  /**
   * One round over people: read, dedupe and apply in TypeScript, guarded write. Returns who must
   * go again (another writer came first, or the person is still in the layout before event time:
   * `legacy` then holds what was read from it, for the next round).
   */
  async function round(
    pending: Map<string, PreparedEvent[]>,
    legacy: Map<string, Read>,
    result: ApplyResult,
    changes: TagChange[],
    redirect: Map<string, PreparedEvent[]>,
  ): Promise<Map<string, PreparedEvent[]>> {
    const fromLegacy = new Map(legacy);
    legacy.clear();
    const toRead = [...pending.keys()].filter((person) => !fromLegacy.has(person));
    // a state this store wrote last is not read again: the guarded write checks its version
    const reads = new Map([...(await readPeople(toRead, true)), ...fromLegacy]);
    const writes: Write[] = [];
    const outcome = new Map<string, { duplicates: number; fresh: PreparedEvent[]; arrivals: Arrival[] }>();
    for (const [person, events] of pending) {
      const r = reads.get(person)!;
      const fresh: PreparedEvent[] = [];
      const added: [number, number][] = [];
      let duplicates = 0;
      // an older version's member is looked for only while the record may hold one (a second SHA-1 per event)
      const legacyToo = r.legacyUntil !== -Infinity;
      const span = (r.span ??= seenSpan(r.seen));
      for (const e of events) {
        const digest = digestOf(e.member);
        if (r.seen.has(digest) || (legacyToo && e.legacyMember && r.seen.has(digestOf(e.legacyMember)))) duplicates++;
        else {
          const at = Math.floor(e.receivedMs / 1000) * 1000;
          r.seen.set(digest, at); // the same event twice in one chunk counts once
          noteSeen(span, at);
          added.push([digest, at]);
          fresh.push(e);
        }
      }
      if (fresh.length === 0) {
        result.duplicates += duplicates;
        continue;
      }
      const cutoff = trimSeenSpanned(r.seen, options.dedupeWindowMs, span);
      // every record up to it is gone: none of an older version's is left (written with the next whole state)
      if (cutoff > r.legacyUntil) r.legacyUntil = -Infinity;
      const applied = fresh.map(keyed);
      const newest = r.state.newest;
      const arrivals = addOwnedEvents(r.state, applied, params);
      outcome.set(person, { duplicates, fresh, arrivals });
      // events in order continue the last replay (in place: no copy of every score, the log says what
      // changed); anything else replays the kept events
      const before: ScoreLog = new Map();
      const advanced = advanceTipInPlace(r.tip, r.state, applied, arrivals, params, before);
      const tip = advanced ?? replayModel(r.state, params);
      // what the chunk added, in the order taken above: reading the state replays it (state.ts)
      // (a state without its scores is written whole: state.ts)
      const diff = advanced ? loggedDiff(tip.interests, before) : scoreDiff(r.tip.interests, tip.interests);
      const tail = r.packed?.scores ? encodeTail(r.packed, newest, added, cutoff, applied, diff) : undefined;
      writes.push({
        person,
        read: r,
        tip,
        mergeSource: '',
        mergedIds: [],
        tail,
        diff,
        before: advanced ? before : undefined,
      });
    }
    const again = new Map<string, PreparedEvent[]>();
    const replies = await guardedWrites(writes, changes);
    const old: string[] = [];
    writes.forEach((w, i) => {
      const reply = replies[i]!;
      const o = outcome.get(w.person)!;
      if (Array.isArray(reply)) {
        // merged away: the events not in its dedupe record go to the profile it was merged into
        result.duplicates += o.duplicates;
        result.redirected += o.fresh.length;
        redirect.set(w.person, [...(redirect.get(w.person) ?? []), ...o.fresh]);
        return;
      }
      if (reply !== 1) {
        if (reply === 4) old.push(w.person);
        again.set(w.person, pending.get(w.person)!); // changed meanwhile, or in the old layout: read again
        return;
      }
      result.duplicates += o.duplicates;
      result.applied += o.arrivals.length;
      for (const a of o.arrivals) result.arrivals[a]++;
    });
    if (old.length > 0) for (const [person, r] of await readLegacy(old)) legacy.set(person, r);
    return again;
  }

  /**
   * The people whose state now carries a version other than the one given (those without a state left out), with it:
   * on one server in one command (VERSIONS_CHANGED), on a Cluster a GETRANGE a person (keys of many slots).
   */
  async function versionsChanged(expected: ReadonlyMap<string, string>): Promise<Map<string, string>> {
    const people = [...expected.keys()];
    const now = new Map<string, string>();
    if (!isCluster(redis)) {
      const parts = slices(people, KEYS_PER_COMMAND);
      const replies = await Promise.all(
        parts.map((part) =>
          redis.pstreamVersionsChanged(
            part.length,
            ...part.map((person) => k.state(person)),
            ...part.map((person) => expected.get(person)!),
          ),
        ),
      );
      replies.forEach((flat, j) => {
        for (let i = 0; i + 1 < flat.length; i += 2) now.set(parts[j]![Number(flat[i]) - 1]!, String(flat[i + 1]));
      });
      return now;
    }
    const heads = await pipelineBySlot(
      redis,
      people,
      (person) => k.state(person),
      (pipeline, person) => pipeline.getrange(k.state(person), 0, 31),
    );
    people.forEach((person, i) => {
      const [err, head] = heads[i] ?? [new Error('no reply'), undefined];
      if (err) throw err;
      const bar = String(head).indexOf('|');
      const version = bar < 0 ? '' : String(head).slice(0, bar);
      if (version !== '' && version !== expected.get(person)) now.set(person, version);
    });
    return now;
  }

  /**
   * The per-tag index is written after the guarded writes, outside them: a writer whose person
   * another writer changed in between (a zombie scorer after a rebalance, whose state write landed
   * before the new owner read) may have put its older scores over the newer writer's. So every
   * person whose state no longer carries the version this writer wrote gets the entries it wrote
   * rewritten from their stored scores (read.ts `readStoredInterests`), and again until the
   * state's version holds still from before that read to after the rewrite: a writer later than
   * that writes its own index after its state, so its scores win. A person without a state (merged
   * away) is left as it is.
   */
  async function settleTagIndex(changes: readonly TagChange[]): Promise<void> {
    const tags = new Map<string, Set<string>>();
    let expected = new Map<string, string>();
    for (const c of changes) {
      if (c.version === undefined) continue;
      expected.set(c.person, c.version); // the last write of the person in this apply
      const set = tags.get(c.person);
      if (set) set.add(c.tag);
      else tags.set(c.person, new Set([c.tag]));
    }
    for (let n = 0; expected.size > 0; n++) {
      if (n >= MAX_ROUNDS) throw contention(`the per-tag index of ${expected.size} people`);
      const now = await versionsChanged(expected);
      if (now.size === 0) return;
      const scores = await readStoredInterests(redis, k, [...now.keys()]);
      const rewrite: TagChange[] = [];
      for (const [person, held] of scores)
        for (const tag of tags.get(person)!) {
          const score = held.get(tag);
          rewrite.push({ tag, person, score: score === undefined ? null : String(score) });
        }
      await writeTagIndex(redis, k, rewrite);
      expected = now;
    }
  }

  async function applyAll(events: readonly PreparedEvent[], depth: number): Promise<ApplyResult> {
    const result: ApplyResult = {
      applied: 0,
      duplicates: 0,
      redirected: 0,
      arrivals: { in_order: 0, reordered: 0, beyond_window: 0 },
    };
    if (events.length === 0) return result;
    const changes: TagChange[] = [];
    const redirect = new Map<string, PreparedEvent[]>();
    let pending = new Map<string, PreparedEvent[]>();
    for (const e of events) {
      const list = pending.get(e.profileKey);
      if (list) list.push(e);
      else pending.set(e.profileKey, [e]);
    }
    const legacy = new Map<string, Read>();
    try {
      for (let n = 0; pending.size > 0; n++) {
        if (n >= MAX_ROUNDS) throw contention(`${pending.size} people's states`);
        pending = await round(pending, legacy, result, changes, redirect);
      }
    } finally {
      // what was written is in the per-tag index before any error is raised (one key per tag, each in its own slot)
      await writeTagIndex(redis, k, changes);
    }
    await settleTagIndex(changes);
    if (redirect.size === 0) return result;
    if (depth >= MAX_ALIAS_HOPS)
      throw aliasLoop(`events of ${[...redirect.keys()].join(', ')} followed more than ${MAX_ALIAS_HOPS} aliases`);
    const moved: PreparedEvent[] = [];
    const imports: TagChange[] = [];
    for (const [source, list] of redirect) {
      const target = await resolve(source);
      // the receiver holds the source's frozen state before the source's later events land on it
      await importFrozen(source, target, imports);
      for (const e of list) moved.push({ ...e, profileKey: target });
    }
    await writeTagIndex(redis, k, imports);
    const there = await applyAll(moved, depth + 1);
    result.applied += there.applied;
    result.duplicates += there.duplicates;
    for (const a of Object.keys(result.arrivals) as Arrival[]) result.arrivals[a] += there.arrivals[a];
    return result;
  }

  return {
    keys: k,

    /**
     * Applies events: per person, one read of the state, the events replayed by event time in
     * TypeScript, one guarded write of the new state with the scores and dedupe records (each
     * stage one pipeline; on a Cluster one per node, concurrently). A person whose state another
     * writer changed in between is read and applied again (its events already recorded then count
     * as duplicates). Events of merged profiles then go to the profile they were merged into.
     * Last, what the writes changed in people's interests goes to the per-tag index.
     */
    apply: (events: PreparedEvent[]): Promise<ApplyResult> => applyAll(events, 0),

    /**
     * Merges profile `source` into `target` (§4.4) in single-person steps, each atomic:
     * 1. freeze: `source` gets its alias record — from then on the guarded write refuses to change
     *    `source`, whose events go to the target, so `source`'s state never changes again;
     * 2. import: the frozen state is merged into the target's, recording `source` as merged there;
     * 3. clean up `source`'s state and interests (its dedupe record and alias stay).
     * Returns where `source` now points (an earlier alias wins over a later, different one).
     * A `source` not merged yet whose merge would take the receiver past the merged-id cap
     * (§4.4: its merged set, plus `source` and `source`'s own merged set) is left alone: nothing is
     * written and the counts come back as `refused`. The check and the freeze are two steps (two
     * people, two slots), so two merges into one person racing from two partitions may both pass;
     * one person's links come in its own partition's order (keyed by the userId), so they don't.
     */
    async merge(source: string, target: string): Promise<MergeResult> {
      const root = await resolve(target);
      if (root === source) return { mergedInto: undefined };
      const [alias, merged, sourceMerged] = await Promise.all([
        redis.get(k.alias(source)),
        redis.scard(k.person(root).merged),
        redis.scard(k.person(source).merged),
      ]);
      const cap = options.maxMergedIds ?? MAX_MERGED_IDS;
      if (alias === null && linkPassesMergedIdCap(merged, 1 + sourceMerged, cap)) {
        return { mergedInto: undefined, refused: { profile: root, merged, incoming: 1 + sourceMerged, cap } };
      }
      const into = await redis.pstreamFreeze(k.alias(source), root);
      await importFrozen(source, into, []);
      const s: PersonKeys = k.person(source);
      await redis.del(s.state, s.interests, s.visits, s.follows, s.seen);
      return { mergedInto: into };
    },

    resolve,

    /**
     * Removes every per-person key and per-tag index of this prefix (the rebuild starts from nothing). Catalog entries
     * stay.
     */
    async clear(): Promise<number> {
      let removed = 0;
      for (const pattern of [k.personPattern, k.tagPattern]) {
        for await (const batch of scanKeys(redis, pattern)) {
          const replies = await pipelineBySlot(
            redis,
            batch,
            (key) => key,
            (pipeline, key) => pipeline.unlink(key),
          );
          for (const [err] of replies) if (err) throw err;
          removed += batch.length;
        }
      }
      return removed;
    },
  };
}

export type InterestStore = ReturnType<typeof createInterestStore>;

/** The timeline parameters (packages/scoring) a store with these options scores and reads states with. */
export function timelineParams(options: StoreOptions): TimelineParams {
  return { ...options.scoring, latenessMs: options.latenessMs, maxTags: options.maxTagsPerPerson };
}

/** A flat HGETALL reply as a record. */
function pairs(flat: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
  return out;
}

/** The event as the timeline takes it (addOwnedEvents sets its `seq`; the state's log copies its fields). */
function keyed(e: PreparedEvent): TimedEvent {
  const type = e.type as EventType;
  return e.dwellMs === undefined
    ? { type, key: e.targetKey, tags: e.tags, t: e.occurredMs, seq: 0 }
    : { type, key: e.targetKey, tags: e.tags, t: e.occurredMs, dwellMs: e.dwellMs, seq: 0 };
}

/** Other writers kept changing the same states: transient, the consumer retries the chunk. */
function contention(what: string): AppError {
  return new AppError(InterestStoreErrors.CONTENTION, `${what} kept changing under ${MAX_ROUNDS} guarded writes`, {
    retryable: true,
  });
}

export type { Keys };
