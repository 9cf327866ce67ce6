import { pipelineBySlot, type Redis } from '@pstream/platform';
import type { Keys } from './keys';

/*
 * The per-tag interest index: for every tag, a sorted set person → the person's stored
 * forward-decayed score in it (the same number as in the person's own `:int` set). Stored scores
 * share one landmark, so "value ≥ v now" is "stored ≥ a bound that depends only on now" — a range
 * query — and the index never needs rewriting as time passes. Written by the scorer after the
 * per-person scripts, with idempotent commands of current values (README).
 */

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
    for (const [tag, score] of now) if (was.get(tag) !== score) changes.push({ tag, person, score: String(score) });
    for (const tag of was.keys()) if (!now.has(tag)) changes.push({ tag, person, score: null });
  }
  return changes;
}

/**
 * A person's new stored score in a tag (as Redis prints it), or null: the tag is gone; `version`: the
 * person's state version the writer wrote it with (store.ts settles the index against it).
 */
export type TagChange = { tag: string; person: string; score: string | null; version?: string };

/** Writes changes to the per-tag index in their order (a later change of the same entry wins). */
export async function writeTagIndex(redis: Redis, k: Keys, changes: readonly TagChange[]): Promise<number> {
  // one key per tag, each in its own slot: grouped by the node that owns it on a Cluster
  const replies = await pipelineBySlot(
    redis,
    changes,
    (c) => k.tag(c.tag),
    (p, c) => {
      if (c.score === null) p.zrem(k.tag(c.tag), c.person);
      else p.zadd(k.tag(c.tag), c.score, c.person);
    },
  );
  for (const [err] of replies) if (err) throw err;
  return changes.length;
}

/** People whose stored score in `tag` is at least `minStored`. */
export async function tagMembersAtLeast(redis: Redis, k: Keys, tag: string, minStored: number): Promise<string[]> {
  if (!Number.isFinite(minStored)) return [];
  return redis.zrangebyscore(k.tag(tag), minStored, '+inf');
}

/** How many people have a stored score of at least `minStored` in `tag` (O(log n)). */
export async function tagCountAtLeast(redis: Redis, k: Keys, tag: string, minStored: number): Promise<number> {
  if (!Number.isFinite(minStored)) return 0;
  return redis.zcount(k.tag(tag), minStored, '+inf');
}

/** The stored scores in `tag` of `people` (null: not in the tag), one command. */
export async function tagScoresOf(
  redis: Redis,
  k: Keys,
  tag: string,
  people: readonly string[],
): Promise<(number | null)[]> {
  if (people.length === 0) return [];
  const out: (number | null)[] = [];
  // bounded arguments per command
  for (let i = 0; i < people.length; i += 10_000) {
    const chunk = people.slice(i, i + 10_000);
    const reply = (await redis.zmscore(k.tag(tag), ...chunk)) as (string | null)[];
    for (const s of reply) out.push(s === null ? null : Number(s));
  }
  return out;
}

/**
 * For each (tag, stored score): the `n` holders of the tag whose stored score is next above it and
 * the `n` next below it — the people nearest to that score in that tag. One round trip.
 */
export async function nearestInTags(
  redis: Redis,
  k: Keys,
  around: readonly { tag: string; score: number }[],
  n: number,
): Promise<string[][]> {
  if (around.length === 0) return [];
  const sides = around.flatMap((a) => [
    { ...a, up: true },
    { ...a, up: false },
  ]);
  const replies = await pipelineBySlot(
    redis,
    sides,
    (s) => k.tag(s.tag),
    (p, s) => {
      if (s.up) p.zrangebyscore(k.tag(s.tag), s.score, '+inf', 'LIMIT', 0, n);
      else p.zrevrangebyscore(k.tag(s.tag), `(${s.score}`, '-inf', 'LIMIT', 0, n);
    },
  );
  return around.map((_, i) => {
    const [e1, up] = replies[2 * i] ?? [new Error('no reply'), []];
    const [e2, down] = replies[2 * i + 1] ?? [new Error('no reply'), []];
    if (e1 || e2) throw e1 ?? e2;
    return [...(up as string[]), ...(down as string[])];
  });
}

/** Everyone's whole stored interest set (tag → stored score), pipelined; profile keys, no aliases. */
export async function readStoredInterests(
  redis: Redis,
  k: Keys,
  people: readonly string[],
): Promise<Map<string, Map<string, number>>> {
  const out = new Map<string, Map<string, number>>();
  if (people.length === 0) return out;
  const replies = await pipelineBySlot(
    redis,
    people,
    (p) => k.interests(p),
    (pipeline, p) => void pipeline.zrange(k.interests(p), 0, -1, 'WITHSCORES'),
  );
  people.forEach((p, i) => {
    const [err, flat] = replies[i] ?? [new Error('no reply'), []];
    if (err) throw err;
    const m = new Map<string, number>();
    const f = flat as string[];
    for (let j = 0; j + 1 < f.length; j += 2) m.set(f[j]!, Number(f[j + 1]));
    out.set(p, m);
  });
  return out;
}

/** A person's strongest `n` tags with their stored scores. */
export async function strongestTags(
  redis: Redis,
  k: Keys,
  person: string,
  n: number,
): Promise<{ tag: string; score: number }[]> {
  const flat = await redis.zrevrange(k.interests(person), 0, n - 1, 'WITHSCORES');
  const out: { tag: string; score: number }[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push({ tag: flat[i]!, score: Number(flat[i + 1]) });
  return out;
}
