import { MAX_ALIAS_HOPS } from '@pstream/events';
import type { ScoringParams } from '@pstream/scoring';
import { pipelineBySlot, scanKeys, type Redis } from '@pstream/platform';
import type { ChainableCommander, Result } from 'ioredis';
import { aliasLoop } from './errors';
import { keys as keyLayout, personKeyList, type Keys } from './keys';
import { interestChanges, readStoredInterests, writeTagIndex, type TagChange } from './tag-index';
import { applyScript, FREEZE_SCRIPT, importScript, READ_STATE_SCRIPT, type StoreLimits } from './scripts';

/** One event ready for the apply script: classified, tagged, its forward factor computed (pure, in the scorer). */
export type PreparedEvent = {
  profileKey: string;
  /** Dedupe member: `source|` + the shared dedupe id (`eventId@profileKey`, see @pstream/events dedupeId). */
  member: string;
  /**
   * The member an older version recorded for the same event (`source|eventId`), also looked for
   * so an upgrade does not re-apply events redelivered right after it; '' or absent for none.
   * Such records expire with the dedupe window.
   */
  legacyMember?: string;
  receivedMs: number;
  type: string;
  occurredMs: number;
  /** 2^((occurredMs − L)/H). */
  forwardFactor: number;
  /** `type:id` of the target: its implicit tag and the key of its visit / follow records. */
  targetKey: string;
  dwellMs: number | undefined;
  /** Explicit tags (event's own or the catalog's), once each, without the implicit tag. */
  tags: string[];
};

export type StoreOptions = StoreLimits & {
  scoring: ScoringParams;
  /** How long applied event ids are remembered (dedupe window). */
  dedupeWindowMs: number;
  /** Replicas that must have a batch's writes before `apply` resolves (Redis WAIT; 0 = none). */
  waitReplicas?: number;
};

export type ApplyResult = { applied: number; duplicates: number; redirected: number };

type ScriptReply = number | [number, string];
/** The apply script's reply: one reply per event, and the interests it changed (flat tag/score pairs). */
type ApplyReply = [ScriptReply[], string[]];


declare module 'ioredis' {
  interface RedisCommander<Context> {
    pstreamApplyEvent(...args: (string | number)[]): Result<ScriptReply, Context>;
    pstreamImport(...args: (string | number)[]): Result<ScriptReply, Context>;
    pstreamFreeze(alias: string, target: string): Result<string, Context>;
    pstreamReadState(...keys: string[]): Result<[string[], string[], string[], string[]], Context>;
  }
}

/**
 * The scorer's Redis model (see README for the key layout and the exactly-once argument).
 * Scripts are registered per client with the scoring parameters baked in; the command names
 * carry a hash of the parameters so two stores with different settings can share one client.
 */
export function createInterestStore(redis: Redis, prefix: string, options: StoreOptions) {
  const k = keyLayout(prefix);
  const suffix = hashOf(JSON.stringify([options.scoring.weights, options.scoring.visitGapMs, options.scoring.maxOpenVisits, options.maxTagsPerPerson, options.visitTtlMs]));
  const applyName = `pstreamApplyEvent_${suffix}`;
  const importName = `pstreamImport_${suffix}`;
  const r = redis as unknown as Record<string, (...args: (string | number)[]) => Promise<ScriptReply>>;
  if (typeof r[applyName] !== 'function') {
    redis.defineCommand(applyName, { numberOfKeys: 6, lua: applyScript(options.scoring, options) });
    redis.defineCommand(importName, { numberOfKeys: 6, lua: importScript(options.scoring, options) });
  }
  if (typeof (redis as Partial<Redis>).pstreamFreeze !== 'function') {
    redis.defineCommand('pstreamFreeze', { numberOfKeys: 1, lua: FREEZE_SCRIPT });
    redis.defineCommand('pstreamReadState', { numberOfKeys: 4, lua: READ_STATE_SCRIPT });
  }

  /** One event's part of the apply script's arguments (scripts.ts applyScript). */
  const eventArgs = (e: PreparedEvent): (string | number)[] => [
    e.member,
    e.legacyMember ?? '',
    e.receivedMs,
    e.type,
    e.occurredMs,
    e.forwardFactor,
    e.targetKey,
    e.dwellMs ?? -1,
    e.tags.length,
    ...e.tags,
  ];
  /** One apply call: `events` (one person's, in order) on `profileKey`'s keys. */
  const batchArgs = (events: readonly PreparedEvent[], profileKey: string, requireMerged: string): (string | number)[] => [
    ...personKeyList(k.person(profileKey)),
    options.dedupeWindowMs,
    requireMerged,
    events.length,
    ...events.flatMap(eventArgs),
  ];

  /** Follows alias records from `id` to the profile that holds its state now. */
  async function resolve(id: string): Promise<string> {
    let current = id;
    for (let hop = 0; hop < MAX_ALIAS_HOPS; hop++) {
      const next = await redis.get(k.person(current).alias);
      if (next === null) return current;
      current = next;
    }
    throw aliasLoop(`alias chain from ${id} longer than ${MAX_ALIAS_HOPS} hops`);
  }

  /**
   * Imports `source`'s frozen state into `into` (or wherever `into` was merged since). Safe to
   * repeat and to race: the import script records `source` in the receiver's merged set in the
   * same step, and a frozen state never changes, so every attempt carries the same data.
   */
  async function importFrozen(source: string, into: string): Promise<void> {
    const s = k.person(source);
    const [interests, visits, follows, merged] = await redis.pstreamReadState(s.interests, s.visits, s.follows, s.merged);
    const payload = [source, interests.length / 2, visits.length / 2, follows.length / 2, merged.length, ...interests, ...visits, ...follows, ...merged];
    let target = into;
    for (let hop = 0; hop < MAX_ALIAS_HOPS; hop++) {
      const reply = await r[importName]!(...personKeyList(k.person(target)), ...payload);
      if (typeof reply === 'number') return;
      target = reply[1];
    }
    throw aliasLoop(`import of ${source} followed more than ${MAX_ALIAS_HOPS} aliases`);
  }

  /** The per-tag index changes an apply call reports for `person`. */
  const changesOf = (person: string, flat: readonly string[], into: TagChange[]): void => {
    for (let i = 0; i + 1 < flat.length; i += 2) into.push({ tag: flat[i]!, person, score: flat[i + 1] === '' ? null : flat[i + 1]! });
  };

  /**
   * Applies one event that met an alias (rare): follow the chain, importing on the way when
   * needed; what the import and the apply change in the receiver's interests goes to `changes`.
   */
  async function applyRedirected(e: PreparedEvent, first: [number, string], changes: TagChange[]): Promise<number> {
    let reply: ScriptReply = first;
    let at = e.profileKey;
    let require = '';
    for (let hop = 0; hop < 2 * MAX_ALIAS_HOPS; hop++) {
      if (typeof reply === 'number') return reply;
      const [code, id] = reply;
      if (code === 2) {
        require = at;
        at = id;
      } else {
        const before = await readStoredInterests(redis, k, [at]);
        await importFrozen(id, at);
        changes.push(...interestChanges(before, await readStoredInterests(redis, k, [at])));
      }
      const [replies, changed] = (await r[applyName]!(...batchArgs([e], at, require))) as unknown as ApplyReply;
      changesOf(at, changed, changes);
      reply = replies[0]!;
    }
    throw aliasLoop(`event ${e.member} followed more than ${MAX_ALIAS_HOPS} aliases`);
  }

  return {
    keys: k,

    /**
     * Applies events in one pipeline (one round trip; on a Cluster one per node, concurrently):
     * each person's events in order, in one script call per person (up to PER_CALL events), each
     * event atomically with its dedupe record. Events of merged profiles are then re-sent, in
     * order, to the profile they were merged into. Last, what the calls changed in people's
     * interests (each reports the tags it wrote with their final scores) goes to the per-tag index.
     */
    async apply(events: PreparedEvent[]): Promise<ApplyResult> {
      const result: ApplyResult = { applied: 0, duplicates: 0, redirected: 0 };
      const changes: TagChange[] = [];
      if (events.length === 0) return result;
      const calls = callsByPerson(events);
      const replies = await pipelineBySlot(redis, calls, (c) => k.person(c[0]!.profileKey).seen, (pipeline: ChainableCommander, c) => {
        (pipeline as unknown as Record<string, (...args: (string | number)[]) => unknown>)[applyName]!(...batchArgs(c, c[0]!.profileKey, ''));
      }, { replicas: options.waitReplicas ?? 0 });
      // A failed call (an event's bad data or state) fails the batch, but the other calls of the
      // pipeline did apply: their index changes are written before the error is raised.
      let failure: Error | null = null;
      for (let i = 0; i < calls.length; i++) {
        const [err, value] = replies[i] ?? [new Error('no reply'), undefined];
        if (err) {
          failure ??= err;
          continue;
        }
        const call = calls[i]!;
        const [perEvent, changed] = value as ApplyReply;
        changesOf(call[0]!.profileKey, changed, changes);
        for (let j = 0; j < call.length; j++) {
          let reply = perEvent[j]!;
          if (typeof reply !== 'number') {
            result.redirected++;
            if (failure) continue; // nothing was recorded for it: the retry applies it
            reply = await applyRedirected(call[j]!, reply, changes);
          }
          if (reply === 1) result.applied++;
          else result.duplicates++;
        }
      }
      // after the scripts and outside them: one key per tag, each in its own slot (tag-index.ts)
      await writeTagIndex(redis, k, changes);
      if (failure) throw failure;
      return result;
    },

    /**
     * Merges profile `source` into `target` (§4.4) in single-person steps, each atomic:
     * 1. freeze: `source` gets its alias record — from then on every event of `source` is applied
     *    to the target (the apply script checks the alias in the same step as the dedupe), so
     *    `source`'s state never changes again;
     * 2. import: the frozen state is added to the target's, recording `source` as merged there;
     * 3. clean up `source`'s interests, visits and follows (its dedupe record and alias stay).
     * Returns where `source` now points (an earlier alias wins over a later, different one).
     */
    async merge(source: string, target: string): Promise<{ mergedInto: string | undefined }> {
      const root = await resolve(target);
      if (root === source) return { mergedInto: undefined };
      const into = await redis.pstreamFreeze(k.person(source).alias, root);
      await importFrozen(source, into);
      const s = k.person(source);
      await redis.del(s.interests, s.visits, s.follows);
      return { mergedInto: into };
    },

    resolve,

    /** Removes every per-person key and per-tag index of this prefix (the rebuild starts from nothing). Catalog entries stay. */
    async clear(): Promise<number> {
      let removed = 0;
      for (const pattern of [k.personPattern, k.tagPattern]) {
        for await (const batch of scanKeys(redis, pattern)) {
          const replies = await pipelineBySlot(redis, batch, (key) => key, (pipeline, key) => pipeline.unlink(key));
          for (const [err] of replies) if (err) throw err;
          removed += batch.length;
        }
      }
      return removed;
    },
  };
}

export type InterestStore = ReturnType<typeof createInterestStore>;

/**
 * Most events one apply call carries: one call blocks Redis for its whole run (≈ 85 µs per event
 * measured, BENCHMARKS.md), so a person with many events in a chunk is split to let other
 * clients' commands in between.
 */
const PER_CALL = 100;

/** The chunk's events as apply calls: per person, in their order, at most PER_CALL each. */
function callsByPerson(events: readonly PreparedEvent[]): PreparedEvent[][] {
  const open = new Map<string, PreparedEvent[]>();
  const calls: PreparedEvent[][] = [];
  for (const e of events) {
    let call = open.get(e.profileKey);
    if (call === undefined || call.length >= PER_CALL) {
      call = [];
      open.set(e.profileKey, call);
      calls.push(call);
    }
    call.push(e);
  }
  return calls;
}

function hashOf(s: string): string {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h.toString(36);
}

export type { Keys };
