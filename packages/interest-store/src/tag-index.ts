import { createHash } from 'node:crypto';
import { AppError, pipelineBySlot, scanKeys, type Redis } from '@pstream/platform';
import type { ChainableCommander, Result } from 'ioredis';
import { InterestStoreErrors } from './errors';
import type { Keys } from './keys';
import { storedScores } from './state';
import { RANGE_MERGE_BELOW, RANGE_MERGE_MAX, RANGE_SPLIT_AT, withRangeScripts } from './tag-range';

/*
 * The per-tag interest index: for every tag, person → the person's stored forward-decayed score in
 * it (the same number as in the scores the person's state carries, read.ts). Stored scores share one landmark, so
 * "value ≥ v now" is "stored ≥ a bound that depends only on now" — a range query — and the index
 * never needs rewriting as time passes. Written by the scorer after the per-person scripts, with
 * idempotent writes of current values (README).
 *
 * Three layouts; writers use the one configured (Keys.tagLayout, TAG_INDEX_LAYOUT) for a tag with no
 * index yet, and a tag's own layout otherwise; readers read whichever a tag is in (its meta hash says).
 * The default, buckets by score range, is in tag-range.ts. One sorted set a tag (`legacyTag`, `set`)
 * is the layout of earlier versions. The layout below (`hash`, TAG_INDEX_BUCKETS) came before score ranges:
 *
 * Layout: a tag's entries are spread over `n` sorted sets (buckets) by a hash of the person, so each
 * stays under Redis's `zset-max-listpack-entries` (128) and is stored as a listpack, ≈ 36 B an entry
 * instead of ≈ 105 B in the skiplist one set of thousands of holders becomes (BENCHMARKS.md, "The
 * per-tag index in buckets"). Buckets follow linear hashing: with n buckets and p the largest power
 * of two ≤ n, a person with hash h is in bucket h mod 2p, or h mod p when that is ≥ n; a write that
 * takes the tag past BUCKET_LOAD entries a bucket splits bucket n − p into itself and bucket n — one
 * small bucket at a time, never the whole tag. All of a tag's keys share the tag's hash tag (one
 * slot), so the write script (TAG_INDEX_WRITE) is atomic per tag, on Redis Cluster too.
 *
 * Readers read every bucket of a tag in one pipeline that ends by reading `n` again: a split in
 * between (the only thing that moves an entry between buckets) changes `n`, and the read is
 * repeated. The index of versions before buckets (`legacyTag`, one set per tag) is read first,
 * beside the buckets, while it holds entries; each write moves the people it writes out of it and
 * up to LEGACY_MOVES more, so it drains with traffic (docs/operations.md). An entry is in exactly one
 * key at any instant; moves go only from the old set to a bucket, so reading the old set first
 * never misses one (it may see one twice: the bucket's, the newer, wins).
 */

/** The average number of people a bucket holds before the next split (worst bucket ≈ 2×, under 128). */
export const BUCKET_LOAD = 48;
/** Entries of the index before buckets that each write script moves into buckets. */
export const LEGACY_MOVES = 500;
/** Reads repeated because a split changed a tag's buckets during them, before giving up. */
const MAX_READS = 20;

/**
 * KEYS: the tag's meta hash, its one set. ARGV: '1' to put a tag without buckets into buckets ('0':
 * it stays one set, written as before buckets), BUCKET_LOAD, LEGACY_MOVES, then `person score` pairs
 * in order (score '' removes the person). A tag already in buckets is written there either way.
 * Returns the tag's bucket count (0: one set; -1: the tag is in score-range buckets, nothing written). The bucket function is `bucketOf` below, on the first
 * 32 bits of the SHA-1 of the person.
 */
export const TAG_INDEX_WRITE = `
local meta, legacy = KEYS[1], KEYS[2]
local base = string.sub(meta, 1, -3)
local load, moves = tonumber(ARGV[2]), tonumber(ARGV[3])
local m = redis.call('HMGET', meta, 'n', 'c', 'l', 'r')
if m[4] then return -1 end
if not m[1] and ARGV[1] ~= '1' then
  for i = 4, #ARGV, 2 do
    if ARGV[i + 1] == '' then redis.call('ZREM', legacy, ARGV[i]) else redis.call('ZADD', legacy, ARGV[i + 1], ARGV[i]) end
  end
  return 0
end
local n, count = tonumber(m[1]) or 1, tonumber(m[2]) or 0
local old = m[3] ~= '0' and redis.call('EXISTS', legacy) == 1
local function hash(member) return tonumber(string.sub(redis.sha1hex(member), 1, 8), 16) end
local function bucket(h)
  local p = 1
  while p * 2 <= n do p = p * 2 end
  local b = h % (2 * p)
  if b >= n then b = h % p end
  return base .. ':' .. b
end
local function split()
  local p = 1
  while p * 2 <= n do p = p * 2 end
  local from, to = base .. ':' .. (n - p), base .. ':' .. n
  local all = redis.call('ZRANGE', from, 0, -1, 'WITHSCORES')
  -- rewritten, not trimmed: a bucket that grew past the listpack limit goes back to a listpack
  redis.call('DEL', from)
  for j = 1, #all, 2 do
    redis.call('ZADD', (hash(all[j]) % (2 * p) == n - p) and from or to, all[j + 1], all[j])
  end
  n = n + 1
end
local function add(member, score)
  count = count + redis.call('ZADD', bucket(hash(member)), score, member)
  while count > load * n do split() end
end
for i = 4, #ARGV, 2 do
  local member, score = ARGV[i], ARGV[i + 1]
  if old then redis.call('ZREM', legacy, member) end
  if score == '' then count = count - redis.call('ZREM', bucket(hash(member)), member)
  else add(member, score) end
end
if old then
  local moved = redis.call('ZPOPMIN', legacy, moves)
  for j = 1, #moved, 2 do add(moved[j], moved[j + 1]) end
  old = redis.call('EXISTS', legacy) == 1
end
redis.call('HSET', meta, 'n', n, 'c', count, 'l', old and 1 or 0)
return n
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    pstreamTagIndexWrite(meta: string, legacy: string, ...args: (string | number)[]): Result<number, Context>;
  }
}

/** Defines the index's scripts on a client once. */
function withScripts(redis: Redis): Redis {
  if (typeof (redis as Partial<Redis>).pstreamTagIndexWrite !== 'function') {
    redis.defineCommand('pstreamTagIndexWrite', { numberOfKeys: 2, lua: TAG_INDEX_WRITE });
  }
  return withRangeScripts(redis);
}

/**
 * Changes of one tag per script call at most. A script call holds every other Redis client (profile
 * reads, freshness probes) while it runs, and RANGE_WRITE's time grows with its changes: ≈ 16–20 ms at
 * 1 000 (the earlier bound), ≈ 3–4 ms at 250, with the same changes/s (BENCHMARKS.md "The index write's
 * longest call"). Calls of one write still go in one pipeline, so round trips do not grow.
 */
export const CHANGES_PER_CALL = 250;

/** The bucket of a person among `n` (n ≥ 1) — TAG_INDEX_WRITE's `bucket`. */
export function bucketOf(person: string, n: number): number {
  const h = Number.parseInt(createHash('sha1').update(person).digest('hex').slice(0, 8), 16);
  let p = 1;
  while (p * 2 <= n) p *= 2;
  const b = h % (2 * p);
  return b >= n ? h % p : b;
}

/**
 * Writes to the per-tag index what changed between two reads of people's whole interest sets
 * (before and after applying events): ZADD of every tag whose stored score changed, ZREM of every
 * tag gone. An event changes more tags than its own (a like re-weights its visit's tags, an
 * unfollow removes the follow's tags, a trim drops the lowest), and the diff catches them all.
 * A person without a `before` gets every tag written.
 */
export async function writeTagIndexChanges(
  redis: Redis,
  k: Keys,
  before: ReadonlyMap<string, ReadonlyMap<string, number>>,
  after: ReadonlyMap<string, ReadonlyMap<string, number>>,
): Promise<number> {
  return writeTagIndex(redis, k, interestChanges(before, after));
}

/** The per-tag index changes between two reads of people's whole interest sets. */
export function interestChanges(
  before: ReadonlyMap<string, ReadonlyMap<string, number>>,
  after: ReadonlyMap<string, ReadonlyMap<string, number>>,
): TagChange[] {
  const changes: TagChange[] = [];
  for (const [person, now] of after) {
    const was = before.get(person) ?? new Map<string, number>();
    const old = (tag: string) => (was.has(tag) ? String(was.get(tag)) : null);
    for (const [tag, score] of now)
      if (was.get(tag) !== score) changes.push({ tag, person, score: String(score), old: old(tag) });
    for (const tag of was.keys()) if (!now.has(tag)) changes.push({ tag, person, score: null, old: old(tag) });
  }
  return changes;
}

/**
 * A person's new stored score in a tag (as Redis prints it), or null: the tag is gone; `version`: the
 * person's state version the writer wrote it with (store.ts settles the index against it); `old`: the
 * score the writer read before (null: the person did not hold the tag; absent: not known), where the
 * score-range layout looks for the entry first (tag-range.ts).
 */
export type TagChange = { tag: string; person: string; score: string | null; version?: string; old?: string | null };

/** Writes changes to the per-tag index in their order (a later change of the same entry wins). */
export async function writeTagIndex(redis: Redis, k: Keys, changes: readonly TagChange[]): Promise<number> {
  if (changes.length === 0) return 0;
  // refused before anything is written: a script stopped by a bad score midway would leave its earlier changes
  // without their bucket counts (tag-range.ts writes a call's counts at its end)
  const bad = changes.find((c) => c.score !== null && !Number.isFinite(Number(c.score)));
  if (bad)
    throw new Error(`per-tag index: the score of ${bad.person} in ${bad.tag} is "${bad.score}", not a finite number`);
  withScripts(redis);
  const byTag = new Map<string, TagChange[]>();
  for (const c of changes) {
    const list = byTag.get(c.tag);
    if (list) list.push(c);
    else byTag.set(c.tag, [c]);
  }
  // each layout's script answers -1 for a tag in the other kind (score ranges or not): written there next
  let todo = [...byTag];
  for (let range = k.tagLayout === 'range', round = 0; todo.length > 0; range = !range, round++) {
    if (round >= MAX_READS) throw contention(todo.map(([tag]) => tag));
    todo = range ? await writeRange(redis, k, todo) : await writeHashed(redis, k, todo);
  }
  return changes.length;
}

export type TagChanges = [tag: string, changes: TagChange[]];

export type TagCall = { tag: string; args: string[]; of: TagChanges };

/** Each tag's changes cut into script calls of at most CHANGES_PER_CALL, `add` writing a change's arguments. */
export function tagCalls(tags: readonly TagChanges[], add: (c: TagChange, args: string[]) => void): TagCall[] {
  const calls: TagCall[] = [];
  for (const of of tags) {
    const [tag, list] = of;
    for (let i = 0; i < list.length; i += CHANGES_PER_CALL) {
      const args: string[] = [];
      for (const c of list.slice(i, i + CHANGES_PER_CALL)) add(c, args);
      calls.push({ tag, args, of });
    }
  }
  return calls;
}

/** The tags whose script answered -1 (the tag is in the other kind of layout): to write there next. */
function inOtherLayout(calls: readonly TagCall[], replies: [Error | null, unknown][]): TagChanges[] {
  const other = new Set<TagChanges>();
  replies.forEach(([err, reply], i) => {
    if (err) throw err;
    if (reply === -1) other.add(calls[i]!.of);
  });
  return [...other];
}

/** Score-range buckets (tag-range.ts RANGE_WRITE); the tags in another layout, unwritten. */
async function writeRange(redis: Redis, k: Keys, tags: readonly TagChanges[]): Promise<TagChanges[]> {
  const calls = tagCalls(tags, (c, args) =>
    args.push(c.person, c.old === undefined ? '?' : (c.old ?? ''), c.score ?? ''),
  );
  const replies = await pipelineBySlot(
    redis,
    calls,
    (c) => k.tagMeta(c.tag),
    (p, c) =>
      void p.pstreamRangeWrite(
        k.tagMeta(c.tag),
        k.tagDirectory(c.tag),
        k.tagCounts(c.tag),
        k.legacyTag(c.tag),
        RANGE_SPLIT_AT,
        RANGE_MERGE_BELOW,
        RANGE_MERGE_MAX,
        ...c.args,
      ),
  );
  return inOtherLayout(calls, replies);
}

/** One set or hash buckets (TAG_INDEX_WRITE); the tags in score-range buckets, unwritten. */
async function writeHashed(redis: Redis, k: Keys, tags: readonly TagChanges[]): Promise<TagChanges[]> {
  const calls = tagCalls(tags, (c, args) => args.push(c.person, c.score ?? ''));
  // each tag's keys in the tag's own slot: grouped by the node that owns it on a Cluster
  const replies = await pipelineBySlot(
    redis,
    calls,
    (c) => k.tagMeta(c.tag),
    (p, c) =>
      void p.pstreamTagIndexWrite(
        k.tagMeta(c.tag),
        k.legacyTag(c.tag),
        k.tagLayout === 'hash' ? '1' : '0',
        BUCKET_LOAD,
        LEGACY_MOVES,
        ...c.args,
      ),
  );
  return inOtherLayout(calls, replies);
}

/**
 * How readers find a tag's entries: in score-range buckets (`range`: one script call answers), or in
 * `n` hash buckets (0: none yet) and, if `legacy`, the index before buckets.
 */
type Layout = { n: number; legacy: boolean; range: boolean };

function layoutOf(reply: unknown): Layout {
  const [n, l, r] = (reply ?? [null, null, null]) as (string | null)[];
  if (r !== null && r !== undefined) return RANGE;
  // no meta yet: the tag was not written since buckets (or never): its index before buckets, if any
  return n === null || n === undefined ? ONE_SET : { n: Number(n), legacy: l !== '0', range: false };
}

const sameLayout = (a: Layout, b: Layout) => a.n === b.n && a.legacy === b.legacy && a.range === b.range;

/** Every key a tag's entries may be in, the index before buckets first (see the layout note above). */
function layoutKeys(k: Keys, tag: string, layout: Layout): string[] {
  const out = layout.legacy ? [k.legacyTag(tag)] : [];
  for (let i = 0; i < layout.n; i++) out.push(k.tagBucket(tag, i));
  return out;
}

/** A tag without buckets: its one set (or nothing). */
const ONE_SET: Layout = { n: 0, legacy: true, range: false };
/** A tag in score-range buckets. */
const RANGE: Layout = { n: 0, legacy: false, range: true };

/**
 * Each key layout's tags' layouts as last read: a read starts from it and is right in one round
 * trip unless a split came since (tags grow one bucket per ≈ 48 new holders; entries are small).
 */
const lastLayouts = new WeakMap<Keys, Map<string, Layout>>();

/** One read of a tag's index: commands on its keys, in one pipeline. */
type IndexRead = { key: string; add: (pipeline: ChainableCommander) => void };

/**
 * Reads several tags' indexes: `plan` gives each tag's commands for the layout last seen; they run
 * in one pipeline (one per node on a Cluster) that ends with each tag's layout as it is now, and run
 * again for a tag whose layout differs (a split since, or during the read). Resolves with each tag's
 * replies, in plan order.
 */
async function readTags(
  redis: Redis,
  k: Keys,
  tags: readonly string[],
  plan: (tag: string, i: number, layout: Layout) => IndexRead[],
): Promise<unknown[][]> {
  const out: unknown[][] = new Array(tags.length);
  let todo = tags.map((tag, i) => ({ tag, i }));
  // the layout last seen (a tag never read: one set) — checked at the end of the read like any other
  const seen = lastLayouts.get(k) ?? new Map<string, Layout>();
  lastLayouts.set(k, seen);
  const guess = k.tagLayout === 'range' ? RANGE : ONE_SET;
  const layouts = tags.map((tag) => seen.get(tag) ?? guess);
  for (let round = 0; todo.length > 0; round++) {
    if (round >= MAX_READS) throw contention(todo.map((t) => t.tag));
    const reads = todo.map(({ tag, i }) => plan(tag, i, layouts[i]!));
    const items: { read?: IndexRead; tag: string }[] = [];
    todo.forEach(({ tag }, j) => {
      for (const read of reads[j]!) items.push({ read, tag });
      items.push({ tag });
    });
    const replies = await pipelineBySlot(
      redis,
      items,
      (it) => it.read?.key ?? k.tagMeta(it.tag),
      (p, it) => (it.read ? it.read.add(p) : void p.hmget(k.tagMeta(it.tag), 'n', 'l', 'r')),
    );
    const again: typeof todo = [];
    let at = 0;
    todo.forEach(({ tag, i }, j) => {
      const mine = replies.slice(at, at + reads[j]!.length);
      at += reads[j]!.length;
      const [err, check] = replies[at++] ?? [new Error('no reply'), undefined];
      if (err) throw err;
      const now = layoutOf(check);
      // a score-range script answers nil for a tag not in that layout (moved in since it ran)
      const stale = layouts[i]!.range && mine.some(([e, v]) => !e && v === null);
      if (stale || !sameLayout(now, layouts[i]!)) {
        layouts[i] = now;
        seen.set(tag, now);
        again.push({ tag, i });
        return;
      }
      out[i] = mine.map(([e, v]) => {
        if (e) throw e;
        return v;
      });
    });
    todo = again;
  }
  return out;
}

function contention(tags: readonly string[]): AppError {
  return new AppError(
    InterestStoreErrors.CONTENTION,
    `the per-tag index of ${tags.join(', ')} kept splitting under ${MAX_READS} reads`,
    { retryable: true },
  );
}

/** People whose stored score in `tag` is at least `minStored`. */
export async function tagMembersAtLeast(redis: Redis, k: Keys, tag: string, minStored: number): Promise<string[]> {
  if (!Number.isFinite(minStored)) return [];
  withScripts(redis);
  const [lists] = await readTags(redis, k, [tag], (t, _, layout) =>
    layout.range
      ? [rangeRead(k, t, (p) => void p.pstreamRangeMembers(k.tagMeta(t), k.tagDirectory(t), String(minStored)))]
      : layoutKeys(k, t, layout).map((key) => ({ key, add: (p) => void p.zrangebyscore(key, minStored, '+inf') })),
  );
  if (lists!.length === 1) return lists![0] as string[];
  const out = new Set<string>();
  for (const list of lists!) for (const person of list as string[]) out.add(person);
  return [...out];
}

/**
 * How many people have a stored score of at least `minStored` in `tag` (tag-range.ts RANGE_COUNT, one
 * atomic script call in any layout: a ZCOUNT and the counts of the buckets above in score-range
 * buckets, a ZCOUNT a key in the others).
 */
export async function tagCountAtLeast(redis: Redis, k: Keys, tag: string, minStored: number): Promise<number> {
  if (!Number.isFinite(minStored)) return 0;
  return withScripts(redis).pstreamRangeCount(
    k.tagMeta(tag),
    k.tagDirectory(tag),
    k.tagCounts(tag),
    k.legacyTag(tag),
    String(minStored),
  );
}

/** A score-range script call on a tag (its keys are in the meta hash's slot). */
function rangeRead(k: Keys, tag: string, add: (p: ChainableCommander) => void): IndexRead {
  return { key: k.tagMeta(tag), add };
}

/**
 * The stored scores in `tag` of `people` (null: not in the tag). Hash buckets and one set: a ZMSCORE
 * of each key's people. Score-range buckets (tag-range.ts RANGE_SCORES): each person is looked for in
 * the bucket of the score their state carries in the tag (`hints`: read here, one GET of each
 * person's state, when the tag was last seen in score ranges), and in every bucket when the state has
 * no scores or the entry is not there; a state that does not hold the tag answers null (the index
 * follows the state: an entry a writer has not removed yet is not looked for).
 */
export async function tagScoresOf(
  redis: Redis,
  k: Keys,
  tag: string,
  people: readonly string[],
): Promise<(number | null)[]> {
  if (people.length === 0) return [];
  withScripts(redis);
  const last = lastLayouts.get(k)?.get(tag) ?? (k.tagLayout === 'range' ? RANGE : ONE_SET);
  const hints = last.range ? await scoreHints(redis, k, tag, people) : undefined;
  // which of `people` each command asked about, per layout (filled by the plan)
  let asked: number[][] = [];
  const [replies] = await readTags(redis, k, [tag], (t, _, layout) => {
    if (layout.range) {
      asked = [people.map((_, i) => i)];
      const pairs = people.flatMap((p, i) => [p, hints?.[i] ?? '?']);
      return [rangeRead(k, t, (p) => void p.pstreamRangeScores(k.tagMeta(t), k.tagDirectory(t), ...pairs))];
    }
    const groups: number[][] = [];
    if (layout.legacy) groups.push(people.map((_, i) => i));
    if (layout.n > 0) {
      const buckets: number[][] = Array.from({ length: layout.n }, () => []);
      people.forEach((p, i) => buckets[bucketOf(p, layout.n)]!.push(i));
      groups.push(...buckets);
    }
    const keys = layoutKeys(k, t, layout);
    asked = [];
    const reads: IndexRead[] = [];
    groups.forEach((group, g) => {
      // bounded arguments per command
      for (let i = 0; i < group.length; i += 10_000) {
        const chunk = group.slice(i, i + 10_000);
        asked.push(chunk);
        reads.push({ key: keys[g]!, add: (p) => void p.zmscore(keys[g]!, ...chunk.map((j) => people[j]!)) });
      }
    });
    return reads;
  });
  const out: (number | null)[] = people.map(() => null);
  // in key order, the index before buckets first: a bucket's score (newer) wins
  replies!.forEach((reply, r) => {
    (reply as (string | null)[]).forEach((s, j) => {
      if (s !== null) out[asked[r]![j]!] = Number(s);
    });
  });
  return out;
}

/**
 * The score each person's state carries in `tag`, as the index would print it ('': the state does not
 * hold the tag; '?': no state, or one without its scores): one GET a person, in one pipeline a node.
 */
async function scoreHints(redis: Redis, k: Keys, tag: string, people: readonly string[]): Promise<string[]> {
  const replies = await pipelineBySlot(
    redis,
    people,
    (p) => k.person(p).state,
    (pipeline, p) => void pipeline.getBuffer(k.person(p).state),
  );
  return people.map((_, i) => {
    const [err, raw] = replies[i] ?? [null, null];
    if (err || !Buffer.isBuffer(raw)) return '?';
    const scores = storedScores(raw);
    if (!scores) return '?';
    const score = scores.get(tag);
    return score === undefined ? '' : String(score);
  });
}

/** Redis's order of equal scores: members by their bytes (UTF-16 order differs only past the surrogates). */
function byMember(a: string, b: string): number {
  if (/[\ud800-\uffff]/.test(a + b)) return Buffer.compare(Buffer.from(a), Buffer.from(b));
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * For each (tag, stored score): the `n` holders of the tag whose stored score is next above it and
 * the `n` next below it — the people nearest to that score in that tag, in the order one sorted set
 * gives them. Each bucket is asked first for a few on each side (about its share of `n`), and again
 * for `n` only when its few could hide some of the nearest `n` (it returned all it was asked for,
 * the last no further than the `n`-th nearest found): two round trips, about 2·n entries read a side.
 */
export async function nearestInTags(
  redis: Redis,
  k: Keys,
  around: readonly { tag: string; score: number }[],
  n: number,
): Promise<string[][]> {
  if (around.length === 0) return [];
  withScripts(redis);
  type Entry = { member: string; score: number };
  const up = (a: Entry, b: Entry) => a.score - b.score || byMember(a.member, b.member);
  const down = (a: Entry, b: Entry) => b.score - a.score || byMember(b.member, a.member);
  const side = (key: string, score: number, isUp: boolean, limit: number): IndexRead => ({
    key,
    add: (p) =>
      void (isUp
        ? p.zrangebyscore(key, score, '+inf', 'WITHSCORES', 'LIMIT', 0, limit)
        : p.zrevrangebyscore(key, `(${score}`, '-inf', 'WITHSCORES', 'LIMIT', 0, limit)),
  });
  const plainSide = (key: string, score: number, isUp: boolean): IndexRead => ({
    key,
    add: (p) =>
      void (isUp
        ? p.zrangebyscore(key, score, '+inf', 'LIMIT', 0, n)
        : p.zrevrangebyscore(key, `(${score}`, '-inf', 'LIMIT', 0, n)),
  });
  const entries = (flat: unknown): Entry[] => {
    const f = flat as string[];
    const out: Entry[] = [];
    for (let i = 0; i + 1 < f.length; i += 2) out.push({ member: f[i]!, score: Number(f[i + 1]) });
    return out;
  };
  /** The `n` nearest of each side from every key's list (the index before buckets first: a duplicate's bucket wins). */
  const nearest = (lists: Entry[][], order: (a: Entry, b: Entry) => number): Entry[] => {
    const best = new Map<string, Entry>();
    for (const list of lists) for (const e of list) best.set(e.member, e);
    return [...best.values()].sort(order).slice(0, n);
  };
  return Promise.all(
    around.map(async ({ tag, score }) => {
      for (let attempt = 0; attempt < MAX_READS; attempt++) {
        let layout: Layout | undefined;
        let few = n;
        const [first] = await readTags(redis, k, [tag], (t, _, l) => {
          layout = l;
          if (l.range)
            return [
              rangeRead(k, t, (p) => void p.pstreamRangeNearest(k.tagMeta(t), k.tagDirectory(t), String(score), n)),
            ];
          const keys = layoutKeys(k, t, l);
          // one key (a tag in one set): its own order is the answer, no scores to merge by
          if (keys.length === 1) return [plainSide(keys[0]!, score, true), plainSide(keys[0]!, score, false)];
          few = Math.min(n, Math.ceil((2 * n) / Math.max(1, l.n)) + 2);
          return keys.flatMap((key) => [
            side(key, score, true, key === k.legacyTag(t) ? n : few),
            side(key, score, false, key === k.legacyTag(t) ? n : few),
          ]);
        });
        if (layout!.range) {
          const [ups, downs] = first![0] as [string[], string[]];
          return [...ups, ...downs];
        }
        const keys = layoutKeys(k, tag, layout!);
        if (keys.length === 1) return [...(first![0] as string[]), ...(first![1] as string[])];
        const lists = first!.map(entries);
        const ups = lists.filter((_, i) => i % 2 === 0);
        const downs = lists.filter((_, i) => i % 2 === 1);
        // keys that may hold more of the nearest than the few they gave
        const more = (sides: Entry[][], order: (a: Entry, b: Entry) => number): number[] => {
          const got = nearest(sides, order);
          const last = got.length < n ? undefined : got[n - 1]!;
          return sides.flatMap((list, i) =>
            few < n &&
            list.length === few &&
            keys[i] !== k.legacyTag(tag) &&
            (last === undefined || order(list[list.length - 1]!, last) < 0)
              ? [i]
              : [],
          );
        };
        const upMore = more(ups, up);
        const downMore = more(downs, down);
        if (upMore.length + downMore.length > 0) {
          const [second] = await readTags(redis, k, [tag], (_tag, _, l) =>
            sameLayout(l, layout!)
              ? [
                  ...upMore.map((i) => side(keys[i]!, score, true, n)),
                  ...downMore.map((i) => side(keys[i]!, score, false, n)),
                ]
              : [],
          );
          if (second!.length !== upMore.length + downMore.length) continue; // split in between: start again
          second!.forEach((flat, j) => {
            if (j < upMore.length) ups[upMore[j]!] = entries(flat);
            else downs[downMore[j - upMore.length]!] = entries(flat);
          });
        }
        return [...nearest(ups, up), ...nearest(downs, down)].map((e) => e.member);
      }
      throw contention([tag]);
    }),
  );
}

/** The whole per-tag index, tag → person → stored score (for tools and tests: it scans every index key). */
export async function readWholeTagIndex(redis: Redis, k: Keys): Promise<Map<string, Map<string, number>>> {
  const head = k.legacyTag('').slice(0, -1); // `{prefix}:tag:{`
  const tags = new Set<string>();
  for await (const batch of scanKeys(redis, k.tagPattern))
    for (const key of batch) if (key.startsWith(head)) tags.add(key.slice(head.length, key.lastIndexOf('}')));
  const list = [...tags];
  withScripts(redis);
  const replies = await readTags(redis, k, list, (t, _, layout) =>
    layout.range
      ? [rangeRead(k, t, (p) => void p.pstreamRangeAll(k.tagMeta(t), k.tagDirectory(t)))]
      : layoutKeys(k, t, layout).map((key) => ({ key, add: (p) => void p.zrange(key, 0, -1, 'WITHSCORES') })),
  );
  const out = new Map<string, Map<string, number>>();
  list.forEach((tag, i) => {
    const m = new Map<string, number>();
    for (const flat of replies[i]!) {
      const f = flat as string[];
      for (let j = 0; j + 1 < f.length; j += 2) m.set(f[j]!, Number(f[j + 1]));
    }
    out.set(tag, m);
  });
  return out;
}
