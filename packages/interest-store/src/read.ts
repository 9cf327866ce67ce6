import { MAX_ALIAS_HOPS } from '@pstream/events';
import { decayedScore, tagDimension, tagValue, type DecayParams } from '@pstream/scoring';
import { isCluster, pipelineBySlot, type Redis } from '@pstream/platform';
import { Command, type ChainableCommander } from 'ioredis';
import type { Keys } from './keys';
import { aliasLoop } from './errors';
import { dedupeDigests, storedScores, storedScoresAtLeast, topStoredScores } from './state';

export type Interest = { tag: string; dimension: string; score: number; value: number };

/**
 * Two strings in the order of their UTF-8 bytes (Redis' order of members), without encoding them:
 * UTF-16 code units compare as code points, and so as UTF-8 bytes, except a surrogate (U+D800-DFFF,
 * half of a code point past U+FFFF) against U+E000-FFFF; that case, rare in tags, is encoded.
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) return Buffer.compare(Buffer.from(a), Buffer.from(b));
    return x - y;
  }
  return a.length - b.length;
}

/**
 * Redis' order of a person's interests read highest first (ZREVRANGE): by stored score, then by tag,
 * both descending (tags compared as bytes, as Redis compares members).
 */
function byStoredScoreDesc(a: [string, number], b: [string, number]): number {
  if (a[1] !== b[1]) return b[1] - a[1];
  return compareUtf8(b[0], a[0]);
}

/** A person's stored interests highest first, in Redis' order (`byStoredScoreDesc`). */
function ordered(scores: Map<string, number>): [string, number][] {
  return [...scores].sort(byStoredScoreDesc);
}

/** Reads a person's alias key and state key: their values, `null` for a key that is not set. */
export type PersonReader = (aliasKey: string, stateKey: string) => Promise<[Buffer | null, Buffer | null]>;

/** At most this many people's keys in one MGET of a `createPersonReader`. */
const MAX_PEOPLE_PER_MGET = 64;

/**
 * A `PersonReader` for a hot read route: the people asked for in the same turn of the event loop
 * are read with ONE `MGET` of all their keys (up to MAX_PEOPLE_PER_MGET people a command), sent on
 * `redis`'s connection directly rather than through its auto-pipelining. A lone read is then one
 * plain command (auto-pipelining builds a pipeline and defers its write for every command it sends
 * alone: ~2× the client CPU of a plain command, measured), and reads that arrive together are one
 * command for Redis to parse and run instead of one each (BENCHMARKS.md "Reads"). The batch leaves
 * on `setImmediate`, after the turn's I/O, as the profile reader's statement does (profile-store
 * `createFactsReader`), so a read waits for nothing it did not wait for already.
 *
 * On a Cluster the people's keys are in different slots, so each person is read with an MGET of
 * its own (the default of `readInterests`). Replies and errors are the same as the MGET's: a batch
 * that fails rejects every read in it. The command is built here, so a client `keyPrefix` would not apply:
 * the keys passed are the full names (`Keys`), as everywhere in this package.
 */
export function createPersonReader(redis: Redis): PersonReader {
  if (isCluster(redis))
    return async (aliasKey, stateKey) => (await redis.mgetBuffer(aliasKey, stateKey)) as [Buffer | null, Buffer | null];
  type Waiter = {
    keys: [string, string];
    resolve: (v: [Buffer | null, Buffer | null]) => void;
    reject: (err: unknown) => void;
  };
  let pending: Waiter[] = [];
  const flush = () => {
    while (pending.length > 0) {
      const batch = pending.slice(0, MAX_PEOPLE_PER_MGET);
      pending = pending.slice(batch.length);
      const command = new Command(
        'mget',
        batch.flatMap((w) => w.keys),
        { replyEncoding: null },
      );
      void redis.sendCommand(command);
      (command.promise as Promise<(Buffer | null)[]>).then(
        (values) => batch.forEach((w, i) => w.resolve([values[2 * i] ?? null, values[2 * i + 1] ?? null])),
        (err: unknown) => batch.forEach((w) => w.reject(err)),
      );
    }
  };
  return (aliasKey, stateKey) =>
    new Promise((resolve, reject) => {
      if (pending.push({ keys: [aliasKey, stateKey], resolve, reject }) === 1) setImmediate(flush);
    });
}

/**
 * A person's top interests decayed to `nowMs`. All stored scores share one landmark, so the
 * stored order is the decayed order. An id merged into another (§4.4) reads the profile it was
 * merged into; past MAX_ALIAS_HOPS aliases it throws IST_ALIAS_LOOP (read under the profile key
 * Postgres resolves an id to, the chain is not followed). With `dimension`, only that dimension's
 * tags count (the set is bounded per person, so filtering after the read is cheap). The scores come
 * from the person's state (state.ts `topStoredScores`: only the top decoded; one MGET with the alias), or for a state
 * written before it carried them, from `:int` (one more round trip, until the scorer next writes
 * the person, which removes `:int`).
 */
export async function readInterests(
  redis: Redis,
  k: Keys,
  profileKey: string,
  options: {
    nowMs: number;
    limit: number;
    decay: DecayParams;
    valueScale: number;
    dimension?: string;
    /** How a person's alias and state are read (default: one MGET of both; see `createPersonReader`). */
    person?: PersonReader;
  },
): Promise<Interest[]> {
  let id = profileKey;
  let raw: Buffer | null | undefined;
  for (let hop = 0; hop <= MAX_ALIAS_HOPS && raw === undefined; hop++) {
    const p = k.person(id);
    // One MGET of both (one slot: the person's keys share a hash tag), which the client's
    // auto-pipelining writes together with whatever other requests sent in that tick (an explicit
    // pipeline is a write of its own: ~30 % more client CPU per read, measured); one command
    // instead of a GET each costs the client less per read (BENCHMARKS.md "Reads", issue 21).
    const [alias, state] = options.person
      ? await options.person(p.alias, p.state)
      : ((await redis.mgetBuffer(p.alias, p.state)) as [Buffer | null, Buffer | null]);
    if (alias === null) raw = state;
    else id = alias.toString();
  }
  // a chain longer than the scorer follows is an error, not a person without interests
  if (raw === undefined) throw aliasLoop(`alias chain from ${profileKey} longer than ${MAX_ALIAS_HOPS} hops`);
  const out: Interest[] = [];
  // decayedScore's factor, once per read rather than per tag (the same product, bit for bit)
  const factor = decayedScore(1, options.nowMs, options.decay);
  const want = options.dimension;
  const add = (tag: string, stored: number) => {
    const score = stored * factor;
    out.push({ tag, dimension: tagDimension(tag), score, value: tagValue(score, options.valueScale) });
  };
  // the state's scores, only the top read out (state.ts `topStoredScores`); else `:int`'s
  if (raw && topStoredScores(raw, options.limit, want === undefined ? undefined : (t) => tagDimension(t) === want, add))
    return out;
  const scores = (await readStoredInterests(redis, k, [id])).get(id)!;
  for (const [tag, stored] of ordered(scores)) {
    if (out.length >= options.limit) break;
    if (want !== undefined && tagDimension(tag) !== want) continue;
    add(tag, stored);
  }
  return out;
}

/**
 * Everyone's whole stored interest set (tag → stored score; profile keys, no aliases): one GET of
 * each person's state in one pipeline (one per node on a Cluster), the scores read from it without
 * replaying it (state.ts `storedScores`); people whose state does not carry its scores yet (written
 * by a version before, or in the layout before event time, or none) are read from `:int` in a second
 * pipeline (empty when there is none). With `connections`, the states are read over them too
 * (`readStates`).
 */
export async function readStoredInterests(
  redis: Redis,
  k: Keys,
  people: readonly string[],
  connections: readonly Redis[] = [],
): Promise<Map<string, Map<string, number>>> {
  const out = new Map<string, Map<string, number>>();
  const raws = await readStates(redis, k, people, connections);
  const older: string[] = [];
  people.forEach((p, i) => {
    const raw = raws[i];
    const scores = Buffer.isBuffer(raw) ? storedScores(raw) : undefined;
    if (scores) out.set(p, scores);
    else older.push(p);
  });
  // the `:int` sorted sets of people whose state does not carry its scores
  const flats = await eachPerson(redis, older, k.interests, (pipeline, key) =>
    pipeline.zrange(key, 0, -1, 'WITHSCORES'),
  );
  older.forEach((p, i) => {
    const flat = flats[i] as string[];
    const m = new Map<string, number>();
    for (let j = 0; j + 1 < flat.length; j += 2) m.set(flat[j]!, Number(flat[j + 1]));
    out.set(p, m);
  });
  return out;
}

/**
 * `readStoredInterests` kept to the tags whose stored score is at least `minStored`, each given to `each` (person,
 * tag) instead of returned: the same reads (the states in one pipeline, `:int` for the people whose state does not
 * carry its scores), the scores read from each state in place (state.ts `storedScoresAtLeast`), so a person costs
 * no Map and no string per tag it does not keep. With `connections` (more connections to the same server as
 * `redis`), the states are read in as many pipelines at once, one per connection, a contiguous share of `people`
 * each: Redis writes at most 64 KB of one client's replies per turn of its event loop, so the ~2 MB of 2 000
 * states took ~35 turns on one connection, each behind whatever other clients ran in that turn (another client's
 * script of 40 ms made it seconds); on 4 connections it takes a quarter of the turns (BENCHMARKS.md "Followers").
 */
export async function readStoredTagsAtLeast(
  redis: Redis,
  k: Keys,
  people: readonly string[],
  minStored: number,
  each: (person: string, tag: string) => void,
  connections: readonly Redis[] = [],
): Promise<void> {
  const raws = await readStates(redis, k, people, connections);
  const older: string[] = [];
  people.forEach((p, i) => {
    const raw = raws[i];
    if (!Buffer.isBuffer(raw) || !storedScoresAtLeast(raw, minStored, (tag) => each(p, tag))) older.push(p);
  });
  // the `:int` sorted sets of people whose state does not carry its scores
  const flats = await eachPerson(redis, older, k.interests, (pipeline, key) =>
    pipeline.zrange(key, 0, -1, 'WITHSCORES'),
  );
  older.forEach((p, i) => {
    const flat = flats[i] as string[];
    for (let j = 0; j + 1 < flat.length; j += 2) if (Number(flat[j + 1]) >= minStored) each(p, flat[j]!);
  });
}

/**
 * Each person's stored state (a Buffer, or null), in as many pipelines at once as there are connections (`redis`
 * and `connections`, all to the same server), a contiguous share of `people` each: Redis writes at most 64 KB of
 * one client's replies per turn of its event loop, so ~1 KB states of hundreds of people take several turns on
 * one connection, each behind whatever other clients run in that turn.
 */
async function readStates(
  redis: Redis,
  k: Keys,
  people: readonly string[],
  connections: readonly Redis[],
): Promise<unknown[]> {
  const all = [redis, ...connections];
  const share = Math.ceil(people.length / all.length);
  const parts = await Promise.all(
    all.map((conn, i) =>
      eachPerson(
        conn,
        people.slice(i * share, (i + 1) * share),
        (p) => k.person(p).state,
        (pipeline, key) => pipeline.getBuffer(key),
      ),
    ),
  );
  return parts.flat();
}

/** One command per person (on one of the person's keys) in one pipeline, one per node on a Cluster; the replies. */
async function eachPerson(
  redis: Redis,
  people: readonly string[],
  keyOf: (person: string) => string,
  send: (pipeline: ChainableCommander, key: string) => unknown,
): Promise<unknown[]> {
  if (people.length === 0) return [];
  const replies = await pipelineBySlot(redis, people, keyOf, (pipeline, p) => void send(pipeline, keyOf(p)));
  return people.map((_, i) => {
    const [err, value] = replies[i] ?? [new Error('no reply'), null];
    if (err) throw err;
    return value;
  });
}

/** A person's strongest `n` tags with their stored scores (in Redis' order of a sorted set read highest first). */
export async function strongestTags(
  redis: Redis,
  k: Keys,
  person: string,
  n: number,
): Promise<{ tag: string; score: number }[]> {
  const scores = (await readStoredInterests(redis, k, [person])).get(person)!;
  return ordered(scores)
    .slice(0, n)
    .map(([tag, score]) => ({ tag, score }));
}

/**
 * Whether the scorer has seen `id`: its state, interests, merge alias or (layout before event time)
 * dedupe record exist (one hash tag, so Redis Cluster-safe). The query API answers 404 only when
 * neither store knows an id.
 */
export async function knowsPerson(redis: Redis, k: Keys, id: string): Promise<boolean> {
  const p = k.person(id);
  return (await redis.exists(p.state, p.interests, p.seen, p.alias)) > 0;
}

/**
 * Each person's dedupe record: the digests (`memberDigest`) of the events applied to them and
 * still inside the dedupe window, one GET per person in one pipeline. For tools and tests that
 * check what was applied.
 */
export async function readAppliedDigests(
  redis: Redis,
  k: Keys,
  people: readonly string[],
): Promise<Map<string, Set<string>>> {
  const replies = await pipelineBySlot(
    redis,
    people,
    (id) => k.person(id).state,
    (pipeline, id) => void pipeline.getBuffer(k.person(id).state),
  );
  const out = new Map<string, Set<string>>();
  people.forEach((id, i) => {
    const [err, raw] = replies[i] ?? [new Error('no reply'), undefined];
    if (err) throw err;
    out.set(id, Buffer.isBuffer(raw) ? dedupeDigests(raw) : new Set());
  });
  return out;
}
