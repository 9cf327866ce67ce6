import { createHash } from 'node:crypto';
import type { EventType } from '@pstream/events';
import { AppError } from '@pstream/platform';
import { emptyModel, emptyState, forwardWeight, type DecayParams, type FollowPart, type PersonState, type TimedEvent, type Visit } from '@pstream/scoring';
import { InterestStoreErrors } from './errors';

/*
 * A person's event-time state (packages/scoring timeline.ts) and dedupe record as one Redis
 * string: `version|json`. The version is a random token written with every change; the guarded
 * write (scripts.ts) replaces the state only while the token it read is still there.
 *
 * JSON, compact arrays (a visit's forward factor is recomputed from its start, exactly as it
 * was computed when the visit opened):
 *   h horizon, n newest event time, q next seq,
 *   i [tag, stored score, …],
 *   v [[target, start, last, comments, likes, shares, favorites, dwellMs | null, [tags]], …],
 *   f [[target, inc, [tags], inc, [tags], …], …]   (one inc/tags pair per follow part),
 *   e [[t, seq, type, target, [tags], dwellMs?], …] (the kept events, sorted),
 *   d "digest:receivedSeconds,…" the dedupe record: a 52-bit digest (13 hex digits of SHA-1) of
 *     each applied event's dedupe member, with its receive time in seconds (base 36).
 */

type Json = {
  h: number | null;
  n: number | null;
  q: number;
  i: (string | number)[];
  v: [string, number, number, number, number, number, number, number | null, string[]][];
  f: (string | number | string[])[][];
  e: ([number, number, string, string, string[]] | [number, number, string, string, string[], number])[];
  d?: string;
};

/** Applied events' member digests → receive time (ms, whole seconds). */
export type Seen = Map<string, number>;

export type StoredState = { version: string; state: PersonState; seen: Seen };

/** The digest a dedupe member is remembered by (52 bits: a false match is ~1e-9 at 3 000 records). */
export function memberDigest(member: string): string {
  return createHash('sha1').update(member).digest('hex').slice(0, 13);
}

/** The digests in a stored state's dedupe record, without decoding the rest. */
export function dedupeDigests(raw: string): Set<string> {
  const d = (JSON.parse(raw.slice(raw.indexOf('|') + 1)) as Json).d;
  return new Set(d ? d.split(',').map((entry) => entry.slice(0, entry.indexOf(':'))) : []);
}

/** Forgets records received more than `windowMs` before the newest one. */
export function trimSeen(seen: Seen, windowMs: number): void {
  let newest = -Infinity;
  for (const at of seen.values()) if (at > newest) newest = at;
  for (const [digest, at] of seen) if (at < newest - windowMs) seen.delete(digest);
}

export function encodeState(version: string, s: PersonState, seen: Seen): string {
  const json: Json = {
    h: s.horizon,
    n: s.newest,
    q: s.seq,
    i: [...s.base.interests].flat(),
    v: [...s.base.visits].map(([k, v]) => [k, v.start, v.last, v.comment, v.like, v.share, v.favorite, v.dwellMs ?? null, v.tags]),
    f: [...s.base.follows].map(([k, parts]) => [k, ...parts.flatMap((p) => [p.inc, p.tags])]),
    e: s.events.map((e) => (e.dwellMs === undefined ? [e.t, e.seq, e.type, e.key, [...e.tags]] : [e.t, e.seq, e.type, e.key, [...e.tags], e.dwellMs])),
    d: [...seen].map(([digest, at]) => `${digest}:${Math.floor(at / 1000).toString(36)}`).join(','),
  };
  return `${version}|${JSON.stringify(json)}`;
}

export function decodeState(raw: string, decay: DecayParams): StoredState {
  const bar = raw.indexOf('|');
  let json: Json;
  try {
    if (bar < 0) throw new Error('no version');
    json = JSON.parse(raw.slice(bar + 1)) as Json;
  } catch (err) {
    // never heals by retrying: the consumer dead-letters the person's events (rebuild repairs the state)
    throw new AppError(InterestStoreErrors.BAD_STATE, `stored person state is not readable: ${(err as Error).message}`, { retryable: false });
  }
  const s = emptyState();
  s.horizon = json.h;
  s.newest = json.n;
  s.seq = json.q;
  for (let i = 0; i + 1 < json.i.length; i += 2) s.base.interests.set(json.i[i] as string, json.i[i + 1] as number);
  for (const [k, start, last, comment, like, share, favorite, dwell, tags] of json.v) {
    s.base.visits.set(k, { start, fstart: forwardWeight(1, start, decay), last, comment, like, share, favorite, dwellMs: dwell ?? undefined, tags });
  }
  for (const [k, ...rest] of json.f) {
    const parts: FollowPart[] = [];
    for (let i = 0; i + 1 < rest.length; i += 2) parts.push({ inc: rest[i] as number, tags: rest[i + 1] as string[] });
    s.base.follows.set(k as string, parts);
  }
  s.events = json.e.map(([t, seq, type, key, tags, dwellMs]): TimedEvent => ({ t, seq, type: type as EventType, key, tags, ...(dwellMs !== undefined && { dwellMs }) }));
  const seen: Seen = new Map();
  if (json.d) {
    for (const entry of json.d.split(',')) {
      const colon = entry.indexOf(':');
      seen.set(entry.slice(0, colon), parseInt(entry.slice(colon + 1), 36) * 1000);
    }
  }
  return { version: raw.slice(0, bar), state: s, seen };
}

/**
 * The state of a person stored in the layout before event time (one sorted set of interests, a
 * hash of packed open visits, a hash of packed follow records, a sorted set of dedupe members;
 * see docs/operations.md): its interests, visits and follows become the base, and the newest
 * visit's last event the horizon, so events older than what was applied count as beyond the
 * window, as they did then; its dedupe members become the record.
 */
export function legacyState(interests: readonly string[], visits: Record<string, string>, follows: Record<string, string>, seenFlat: readonly string[]): { state: PersonState; seen: Seen } {
  const s = emptyState();
  const base = emptyModel();
  for (let i = 0; i + 1 < interests.length; i += 2) base.interests.set(interests[i]!, Number(interests[i + 1]));
  for (const [key, raw] of Object.entries(visits)) {
    const nl = raw.indexOf('\n');
    const [start, fstart, last, comment, like, share, favorite, dwell] = raw.slice(0, nl).split('|').map(Number) as number[];
    const tags = raw.slice(nl + 1);
    const v: Visit = { start: start!, fstart: fstart!, last: last!, comment: comment!, like: like!, share: share!, favorite: favorite!, dwellMs: dwell! < 0 ? undefined : dwell, tags: tags === '' ? [] : tags.split('\t') };
    base.visits.set(key, v);
    if (s.newest === null || v.last > s.newest) s.newest = v.last;
  }
  for (const [key, raw] of Object.entries(follows)) {
    base.follows.set(
      key,
      raw.split('\n').map((line) => {
        const [inc, ...tags] = line.split('\t');
        return { inc: Number(inc), tags: [...tags, key] };
      }),
    );
  }
  s.base = base;
  s.horizon = s.newest;
  const seen: Seen = new Map();
  for (let i = 0; i + 1 < seenFlat.length; i += 2) seen.set(memberDigest(seenFlat[i]!), Math.floor(Number(seenFlat[i + 1]) / 1000) * 1000);
  return { state: s, seen };
}
