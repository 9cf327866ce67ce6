import { hash } from 'node:crypto';
import type { EventType } from '@pstream/events';
import { AppError } from '@pstream/platform';
import {
  addEvents,
  emptyModel,
  emptyState,
  EventLog,
  forwardWeight,
  type DecayParams,
  type FollowPart,
  type KeyedEvent,
  type PersonState,
  type TimedEvent,
  type TimelineParams,
  type Visit,
} from '@pstream/scoring';
import { InterestStoreErrors } from './errors';

/*
 * A person's event-time state (packages/scoring timeline.ts) and dedupe record as one Redis
 * string: `version|` then the packed state. The version is a random token written with every
 * change; the guarded write (scripts.ts) replaces the state only while the token it read is still
 * there.
 *
 * Packed (format byte 0x01 after the bar; a `{` there is the JSON form of earlier versions, still
 * read — decodeJsonState — and rewritten packed at the person's next write):
 *   strings: count, then each as length + UTF-8 — every tag, target key and event type once;
 *     everything below names a string by its index in this table;
 *   flags (bit 0: horizon set, bit 1: newest set; above them, flags / 4, what the dedupe record may
 *     hold of an older version's members: 0 not said (written before this was kept: up to its newest
 *     record), 1 none, n ≥ 2 up to receive second n − 2 — see `StoredState.legacyUntil`), newest,
 *     horizon (relative to newest), seq;
 *   interests: count, then (tag, float64 stored score) — the base's scores, exact;
 *   visits: count, then (key, start rel. newest, last − start, comment, like, share, favorite,
 *     dwell or none, tag count, tags) — the forward factor is recomputed from the start,
 *     exactly as it was computed when the visit opened;
 *   follows: count, then (key, part count, then (float64 inc, tag count, tags));
 *   events: count, then (t − previous t, seq below the next seq, type, key, dwell or none, tag
 *     count, tags) — sorted, so the time steps are small;
 *   dedupe record: count, newest receive second, then (52-bit digest as 7 bytes, seconds before
 *     the newest).
 * Numbers are varints: integers (|x| < 2^50) as zigzag·2, anything else as the marker 1 and a
 * float64, so every number round-trips exactly; 3 is "no number" (a visit without dwell).
 *
 * Tails (`encodeTail`): a write that only adds a chunk's events appends what the chunk brought
 * instead of the whole state, so its cost follows the chunk, not the state. Each tail is the
 * marker 0x02, the strings it adds to the table (numbered on after the ones before), its dedupe
 * records (count, newest receive second, then (digest, seconds before it)), the dedupe trim (the
 * first receive second kept, before that newest), and the chunk's fresh events in arrival order
 * (count, then (t − previous t, the first relative to the newest event before the tail; type;
 * key; dwell or none; tag count, tags)). Reading replays them: the records are added, the trim
 * applied and the events added (`addEvents`) — the steps the writer took, so the same state to
 * the bit. The store writes the whole state again (compacts) once its tails pass a share of it.
 *
 * With the current scores (format byte 0x03, what the store writes): the same, plus the person's
 * current interest scores — the replayed model's, what readers read (tag → float64 stored score,
 * exact) — right after the header as (count, then (tag, float64)) followed by the byte length of
 * the rest of the snapshot; each tail of such a state carries, right after its strings, the scores
 * its events changed (count, then (tag, float64)), the tags they removed (count, tags) and the byte
 * length of the rest of the tail. A reader of scores (`storedScores`) reads the string table, the
 * scores and each tail's changes and skips the rest by those lengths: no replay, no scoring
 * parameters. A state without them (0x01, JSON) is read as before, and readers read its scores from
 * the `:int` sorted set that versions before wrote beside it (read.ts).
 */

/** Applied events' member digests (`digestOf`) → receive time (ms, whole seconds). */
export type Seen = Map<number, number>;

/**
 * A packed state as stored, for appending to it: the string table its tails continue (string →
 * number, in order) and its size in bytes after the version, whole and without tails.
 */
export type Packed = { ids: Map<string, number>; bytes: number; snapshotBytes: number; scores: boolean };

/** A person's current interest scores: tag → stored (forward-decayed) score, as readers read them. */
export type Scores = ReadonlyMap<string, number>;

/**
 * `packed`: absent for a state that was not stored packed (JSON, none): its next write is whole; `packed.scores`:
 * whether it carries the current scores (format 0x03; tails are appended only to such a state). `scores`: those
 * scores, tails applied (absent for a state without them).
 * `legacyUntil`: the receive time (ms) up to which the dedupe record may hold a member an older
 * version recorded (`source|eventId`, before the member named the profile too), so an event's
 * older member must be looked for; -Infinity when none can be there (the state was begun by this
 * version, or the window has passed that time since).
 */
export type StoredState = {
  version: string;
  state: PersonState;
  seen: Seen;
  packed?: Packed;
  scores?: Map<string, number>;
  legacyUntil: number;
};

/** The newest receive time among dedupe records, -Infinity for none. */
export function newestSeen(seen: Seen): number {
  let newest = -Infinity;
  for (const at of seen.values()) if (at > newest) newest = at;
  return newest;
}

const PACKED = 0x01;
const TAIL = 0x02;
/** Packed with the current scores (readers read them without replaying): see the format above. */
const PACKED_SCORES = 0x03;
/** The varint of an absent number: numbers are even (integers) or the float marker 1. */
const NONE = 3;
const BAR = 0x7c; // '|'

/**
 * The digest a dedupe member is remembered by: the first 52 bits of its SHA-1 (a false match is ~1e-9 at 3 000
 * records).
 */
export function digestOf(member: string): number {
  // the one-shot hash (no Hash object per event) as hex: a string, not a Buffer (an ArrayBuffer) per event; its
  // first 13 digits are the first 52 bits, exactly (below 2^53)
  return Number.parseInt(hash('sha1', member, 'hex').slice(0, 13), 16);
}

/** A digest as 13 hex digits (the first 13 of the member's SHA-1), as tools and tests name it. */
export function digestHex(digest: number): string {
  return digest.toString(16).padStart(13, '0');
}

/** `digestHex(digestOf(member))`. */
export function memberDigest(member: string): string {
  return digestHex(digestOf(member));
}

/** The digests in a stored state's dedupe record, without decoding the rest. */
export function dedupeDigests(raw: Buffer | string): Set<string> {
  const buf = typeof raw === 'string' ? Buffer.from(raw) : raw;
  const bar = buf.indexOf(BAR);
  if (buf[bar + 1] !== PACKED && buf[bar + 1] !== PACKED_SCORES) {
    const d = (JSON.parse(buf.subarray(bar + 1).toString()) as Json).d;
    return new Set(d ? d.split(',').map((entry) => entry.slice(0, entry.indexOf(':'))) : []);
  }
  return new Set([...decode(buf, { halfLifeMs: 1, landmarkMs: 0 } as DecayParams, false).seen.keys()].map(digestHex));
}

/** Forgets records received more than `windowMs` before the newest one; returns the bound (older is gone). */
export function trimSeen(seen: Seen, windowMs: number): number {
  const cutoff = newestSeen(seen) - windowMs;
  for (const [digest, at] of seen) if (at < cutoff) seen.delete(digest);
  return cutoff;
}

/**
 * Kept beside a dedupe record, so that trimming it scans it only when a record can have left the window: its newest
 * receive time, exactly, and one at or below its oldest (-Infinity / Infinity for none). Every record added goes
 * through `noteSeen`; a record set any other way needs a new span (`seenSpan`).
 */
export type SeenSpan = { newest: number; oldest: number };

/** The span of a dedupe record (one scan). */
export function seenSpan(seen: Seen): SeenSpan {
  const span = { newest: -Infinity, oldest: Infinity };
  for (const at of seen.values()) noteSeen(span, at);
  return span;
}

/** A record received at `at` was added. */
export function noteSeen(span: SeenSpan, at: number): void {
  if (at > span.newest) span.newest = at;
  if (at < span.oldest) span.oldest = at;
}

/**
 * `trimSeen` with the record's span: the same bound and the same records forgotten, without a scan while the oldest
 * record is still inside the window.
 */
export function trimSeenSpanned(seen: Seen, windowMs: number, span: SeenSpan): number {
  const cutoff = span.newest - windowMs;
  if (span.oldest >= cutoff) return cutoff;
  let oldest = Infinity;
  for (const [digest, at] of seen)
    if (at < cutoff) seen.delete(digest);
    else if (at < oldest) oldest = at;
  span.oldest = oldest;
  return cutoff;
}

/** Up to this many bytes a Writer copies in a loop rather than through a Buffer view (`range`, `copyOut`). */
const SHORT_COPY = 256;

/** A growing byte buffer with varint numbers; one scratch buffer per process, copied out at the end. */
class Writer {
  buf: Buffer = Buffer.allocUnsafe(4096);
  pos = 0;
  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  /** A non-negative integer below 2^53. */
  uint(x: number): void {
    this.room(8);
    if (x < 0x80) {
      this.buf[this.pos++] = x;
      return;
    }
    if (x < 0x4000) {
      this.buf[this.pos++] = (x & 0x7f) | 0x80;
      this.buf[this.pos++] = x >>> 7;
      return;
    }
    while (x >= 0x80) {
      this.buf[this.pos++] = (x % 0x80) | 0x80;
      x = Math.floor(x / 0x80);
    }
    this.buf[this.pos++] = x;
  }
  num(x: number): void {
    if (Number.isInteger(x) && Math.abs(x) < 2 ** 50 && !Object.is(x, -0)) this.uint((x < 0 ? -2 * x - 1 : 2 * x) * 2);
    else {
      this.uint(1);
      this.f64(x);
    }
  }
  /** A number or none (the varint 3, which no number uses). */
  opt(x: number | undefined): void {
    if (x === undefined) this.uint(NONE);
    else this.num(x);
  }
  f64(x: number): void {
    this.room(8);
    this.buf.writeDoubleLE(x, this.pos);
    this.pos += 8;
  }
  bytes(b: Buffer | string): void {
    const n = typeof b === 'string' ? Buffer.byteLength(b) : b.length;
    this.room(n);
    if (typeof b === 'string') this.buf.write(b, this.pos, 'utf8');
    else b.copy(this.buf, this.pos);
    this.pos += n;
  }
  /**
   * Bytes [start, end) of another writer's buffer. A short run (a tail's parts) byte by byte: `copy` and `subarray`
   * each allocate a view of the bytes first, which for a few dozen bytes costs more than the copy.
   */
  range(from: Writer, start: number, end: number): void {
    const n = end - start;
    this.room(n);
    if (n > SHORT_COPY) from.buf.copy(this.buf, this.pos, start, end);
    else {
      const src = from.buf;
      const dst = this.buf;
      for (let i = 0; i < n; i++) dst[this.pos + i] = src[start + i]!;
    }
    this.pos += n;
  }
  /** The bytes written, as a new Buffer (a short one copied byte by byte, as `range`). */
  copyOut(): Buffer {
    const n = this.pos;
    const out = Buffer.allocUnsafe(n);
    if (n > SHORT_COPY) this.buf.copy(out, 0, 0, n);
    else for (let i = 0; i < n; i++) out[i] = this.buf[i]!;
    return out;
  }
  /** A string as its UTF-8 length and bytes (ASCII copied here: cheaper than a native call for short tags). */
  str(x: string): void {
    const n = x.length;
    this.room(n + 8);
    const at = this.pos;
    this.uint(n);
    const buf = this.buf;
    let pos = this.pos;
    for (let i = 0; i < n; i++) {
      const c = x.charCodeAt(i);
      if (c >= 0x80) {
        this.pos = at;
        this.uint(Buffer.byteLength(x));
        this.bytes(x);
        return;
      }
      buf[pos++] = c;
    }
    this.pos = pos;
  }
  /** A 52-bit digest as 7 little-endian bytes. */
  digest(x: number): void {
    this.room(7);
    this.buf.writeUIntLE(x % 2 ** 48, this.pos, 6);
    this.buf[this.pos + 6] = Math.floor(x / 2 ** 48);
    this.pos += 7;
  }
}

class Reader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start: number,
  ) {
    this.pos = start;
  }
  uint(): number {
    let x = 0;
    let scale = 1;
    for (;;) {
      const b = this.buf[this.pos++];
      if (b === undefined) throw new Error('truncated');
      x += (b & 0x7f) * scale;
      if (b < 0x80) return x;
      scale *= 0x80;
    }
  }
  num(): number {
    return this.numOf(this.uint());
  }
  opt(): number | undefined {
    const u = this.uint();
    return u === NONE ? undefined : this.numOf(u);
  }
  private numOf(u: number): number {
    if (u === 1) return this.f64();
    const z = u / 2;
    return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  }
  f64(): number {
    if (this.pos + 8 > this.buf.length) throw new Error('truncated');
    const x = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return x;
  }
  str(): string {
    const n = this.uint();
    if (this.pos + n > this.buf.length) throw new Error('truncated');
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  digest(): number {
    let x = 0;
    let scale = 1;
    for (let i = 0; i < 7; i++) {
      const b = this.buf[this.pos++];
      if (b === undefined) throw new Error('truncated');
      x += b * scale;
      scale *= 256;
    }
    return x;
  }
}

/** Scratch buffers (encoding is synchronous): the whole state, and its body while the string table grows. */
const writer = new Writer();
const bodyWriter = new Writer();
/** Scratch for the current scores (and a tail's dedupe records), written before their place is known. */
const scoreWriter = new Writer();
/** The string table of the state being encoded; handed to its `Packed` by `encodePacked` (a new one then). */
let table = new Map<string, number>();
const strings: string[] = [];

/** Bytes of a packed state by part (for `pnpm bench:cost:redis`). */
export type StateParts = {
  header: number;
  strings: number;
  interests: number;
  visits: number;
  follows: number;
  events: number;
  dedupe: number;
  /** The current scores (format 0x03) with the length of the rest. */
  scores: number;
};

/** Every part at 0 bytes (to add a sample's parts to). */
export function emptyStateParts(): StateParts {
  return { header: 0, strings: 0, interests: 0, visits: 0, follows: 0, events: 0, dedupe: 0, scores: 0 };
}

/**
 * The packed state; with `scores` (the person's current interests, `replay`'s), in the form that carries them
 * (0x03), else in the form without (0x01). With `parts`, also adds each part's bytes to it. `legacyUntil`
 * (StoredState): left out, the state reads back as an older version's would (up to its newest record).
 */
export function encodeState(
  version: string,
  s: PersonState,
  seen: Seen,
  options: { parts?: StateParts; scores?: Scores; legacyUntil?: number } = {},
): Buffer {
  const { parts, scores, legacyUntil } = options;
  const w = writer;
  w.pos = 0;
  w.bytes(version);
  w.bytes('|');
  w.uint(scores ? PACKED_SCORES : PACKED);
  // the string table first: its size is known only once every string was seen
  table.clear();
  strings.length = 0;
  const id = (x: string): number => {
    let i = table.get(x);
    if (i === undefined) {
      i = strings.length;
      table.set(x, i);
      strings.push(x);
    }
    return i;
  };
  const body = bodyWriter;
  body.pos = 0;
  const tagList = (tags: readonly string[]) => {
    body.uint(tags.length);
    for (const t of tags) body.uint(id(t));
  };
  const ref = s.newest ?? 0;
  const legacy = legacyUntil === undefined ? 0 : legacyUntil === -Infinity ? 1 : 2 + Math.floor(legacyUntil / 1000);
  body.uint((s.horizon !== null ? 1 : 0) + (s.newest !== null ? 2 : 0) + 4 * legacy);
  if (s.newest !== null) body.num(s.newest);
  if (s.horizon !== null) body.num(s.horizon - ref);
  body.uint(s.seq);
  const mark = (part: keyof StateParts, from: number) => {
    if (parts) parts[part] += body.pos - from;
    return body.pos;
  };
  let at = mark('header', 0);
  const headerEnd = at;
  // Map loops as forEach: a for…of over entries makes a [key, value] array per entry (hundreds a state)
  body.uint(s.base.interests.size);
  s.base.interests.forEach((score, tag) => {
    body.uint(id(tag));
    body.f64(score);
  });
  at = mark('interests', at);
  body.uint(s.base.visits.size);
  s.base.visits.forEach((v, key) => {
    body.uint(id(key));
    body.num(v.start - ref);
    body.num(v.last - v.start);
    body.num(v.comment);
    body.num(v.like);
    body.num(v.share);
    body.num(v.favorite);
    body.opt(v.dwellMs);
    tagList(v.tags);
  });
  at = mark('visits', at);
  body.uint(s.base.follows.size);
  s.base.follows.forEach((parts, key) => {
    body.uint(id(key));
    body.uint(parts.length);
    for (const p of parts) {
      body.f64(p.inc);
      tagList(p.tags);
    }
  });
  at = mark('follows', at);
  body.uint(s.events.length);
  let prev = ref;
  s.events.forEachField((t, seq, type, key, dwellMs, tags, from, count) => {
    body.num(t - prev);
    prev = t;
    body.num(s.seq - seq);
    body.uint(id(type));
    body.uint(id(key));
    body.opt(dwellMs);
    body.uint(count);
    for (let j = from; j < from + count; j++) body.uint(id(tags[j]!));
  });
  at = mark('events', at);
  let newestSeen = 0;
  for (const at of seen.values()) if (at > newestSeen) newestSeen = at;
  const top = Math.floor(newestSeen / 1000);
  body.uint(seen.size);
  body.num(top);
  seen.forEach((at, digest) => {
    body.digest(digest);
    body.num(top - Math.floor(at / 1000));
  });
  mark('dedupe', at);
  const sw = scoreWriter;
  sw.pos = 0;
  if (scores) {
    sw.uint(scores.size);
    scores.forEach((score, tag) => {
      sw.uint(id(tag));
      sw.f64(score);
    });
    sw.uint(body.pos - headerEnd);
    if (parts) parts.scores += sw.pos;
  }
  const head = w.pos;
  w.uint(strings.length);
  for (const x of strings) w.str(x);
  if (parts) {
    parts.strings += w.pos - head;
    parts.header += head;
  }
  w.range(body, 0, headerEnd);
  w.range(sw, 0, sw.pos);
  w.range(body, headerEnd, body.pos);
  return w.copyOut();
}

/** `encodeState`, and what a tail appended to it needs (`encodeTail`). */
export function encodePacked(
  version: string,
  s: PersonState,
  seen: Seen,
  legacyUntil: number,
  scores?: Scores,
): { raw: Buffer; packed: Packed } {
  const raw = encodeState(version, s, seen, { scores, legacyUntil });
  const bytes = raw.length - Buffer.byteLength(version);
  // the scratch table itself, not a copy of it: the next encode starts a new one
  const ids = table;
  table = new Map();
  return { raw, packed: { ids, bytes, snapshotBytes: bytes, scores: scores !== undefined } };
}

const newStrings: string[] = [];

/** What changed between two score maps: the tags set (in \`after\`'s order) with their scores, the tags removed. */
export type ScoreDiff = { tags: string[]; scores: number[]; removed: string[] };

/** The diff from \`before\` to \`after\` (one pass over each). */
export function scoreDiff(before: Scores, after: Scores): ScoreDiff {
  const tags: string[] = [];
  const scores: number[] = [];
  const removed: string[] = [];
  // forEach, not for…of: no [tag, score] array per entry (a person's whole interest set, every write)
  after.forEach((score, tag) => {
    if (before.get(tag) !== score) {
      tags.push(tag);
      scores.push(score);
    }
  });
  for (const tag of before.keys()) if (!after.has(tag)) removed.push(tag);
  return { tags, scores, removed };
}

/**
 * `scoreDiff(before, after)` where `before` is `after` with the scores `log` records put back (model.ts ScoreLog: the
 * tags the events changed, with their scores before them): the same diff, in the same order, without a copy of
 * `before`.
 */
export function loggedDiff(after: Scores, log: ReadonlyMap<string, number | undefined>): ScoreDiff {
  const tags: string[] = [];
  const scores: number[] = [];
  const removed: string[] = [];
  if (log.size === 0) return { tags, scores, removed };
  after.forEach((score, tag) => {
    if (log.has(tag) && log.get(tag) !== score) {
      tags.push(tag);
      scores.push(score);
    }
  });
  log.forEach((was, tag) => {
    if (was !== undefined && !after.has(tag)) removed.push(tag);
  });
  return { tags, scores, removed };
}

/**
 * What one chunk adds to a packed state (see the format above): `added`, the dedupe records it
 * made (digest, receive ms), `cutoff`, the bound `trimSeen` returned after them, and `events`,
 * the fresh events `addEvents` was given, in that order; `newest`, the state's newest event time
 * before them; `scores`, the current scores before and after them (required by a state that
 * carries its scores, `packed.scores`; the tail then carries what changed; or that change, `scoreDiff`'s). Numbers the new strings
 * on in `packed.ids` (the caller drops `packed` if the tail is not written).
 */
export function encodeTail(
  packed: Packed,
  newest: number | null,
  added: readonly (readonly [number, number])[],
  cutoff: number,
  events: readonly KeyedEvent[],
  scores?: { before: Scores; after: Scores } | ScoreDiff,
): Buffer {
  if (packed.scores && !scores) throw new Error('a tail of a state with its scores needs the scores it changes');
  const ids = packed.ids;
  newStrings.length = 0;
  const id = (x: string): number => {
    let i = ids.get(x);
    if (i === undefined) {
      i = ids.size;
      ids.set(x, i);
      newStrings.push(x);
    }
    return i;
  };
  const body = bodyWriter;
  body.pos = 0;
  body.uint(events.length);
  let prev = newest ?? 0;
  for (const e of events) {
    body.num(e.t - prev);
    prev = e.t;
    body.uint(id(e.type));
    body.uint(id(e.key));
    body.opt(e.dwellMs);
    body.uint(e.tags.length);
    for (const t of e.tags) body.uint(id(t));
  }
  // the changed scores first, then the dedupe records and trim, in one scratch buffer: the changes go before the
  // length of the rest
  const sw = scoreWriter;
  sw.pos = 0;
  if (packed.scores && scores) {
    const diff = 'before' in scores ? scoreDiff(scores.before, scores.after) : scores;
    sw.uint(diff.tags.length);
    for (let i = 0; i < diff.tags.length; i++) {
      sw.uint(id(diff.tags[i]!));
      sw.f64(diff.scores[i]!);
    }
    sw.uint(diff.removed.length);
    for (const tag of diff.removed) sw.uint(id(tag));
  }
  const changesEnd = sw.pos;
  let top = 0;
  for (const [, at] of added) if (at / 1000 > top) top = at / 1000;
  sw.uint(added.length);
  sw.num(top);
  for (const [digest, at] of added) {
    sw.digest(digest);
    sw.num(top - at / 1000);
  }
  // records are whole seconds, so "before cutoff" is "before its second, rounded up"
  sw.num(top - Math.ceil(cutoff / 1000));
  const w = writer;
  w.pos = 0;
  w.uint(TAIL);
  w.uint(newStrings.length);
  for (const x of newStrings) w.str(x);
  w.range(sw, 0, changesEnd);
  if (packed.scores) w.uint(sw.pos - changesEnd + body.pos);
  w.range(sw, changesEnd, sw.pos);
  w.range(body, 0, body.pos);
  return w.copyOut();
}

/**
 * A stored state. A packed state with tails replays their events (`addEvents`), so it needs the
 * timeline's parameters; the decay alone reads a state without tails.
 */
export function decodeState(raw: Buffer | string, params: DecayParams | TimelineParams): StoredState {
  return decode(raw, params, true);
}

function decode(raw: Buffer | string, params: DecayParams | TimelineParams, withEvents: boolean): StoredState {
  const timeline = 'weights' in params ? params : undefined;
  const decay = timeline ? timeline.decay : (params as DecayParams);
  const buf = typeof raw === 'string' ? Buffer.from(raw, 'latin1') : raw;
  const bar = buf.indexOf(BAR);
  try {
    if (bar < 0) throw new Error('no version');
    const version = buf.toString('latin1', 0, bar);
    const format = buf[bar + 1];
    if (format !== PACKED && format !== PACKED_SCORES) {
      const json = decodeJsonState(buf.toString('utf8', bar + 1), decay);
      return { version, ...json, legacyUntil: newestSeen(json.seen) };
    }
    const withScores = format === PACKED_SCORES;
    const r = new Reader(buf, bar + 2);
    const { strings, str } = readTable(r);
    const tagList = () => {
      const tags: string[] = new Array(r.uint());
      for (let i = 0; i < tags.length; i++) tags[i] = str();
      return tags;
    };
    const s = emptyState();
    const flags = r.uint();
    const legacy = Math.floor(flags / 4);
    const ref = flags & 2 ? r.num() : 0;
    s.newest = flags & 2 ? ref : null;
    s.horizon = flags & 1 ? ref + r.num() : null;
    s.seq = r.uint();
    const scores = withScores ? new Map<string, number>() : undefined;
    if (scores) {
      readScores(r, str, scores);
      r.uint(); // the length of the rest
    }
    for (let n = r.uint(); n > 0; n--) {
      const tag = str();
      s.base.interests.set(tag, r.f64());
    }
    for (let n = r.uint(); n > 0; n--) {
      const key = str();
      const start = ref + r.num();
      const last = start + r.num();
      const comment = r.num();
      const like = r.num();
      const share = r.num();
      const favorite = r.num();
      const dwellMs = r.opt();
      s.base.visits.set(key, {
        start,
        fstart: forwardWeight(1, start, decay),
        last,
        comment,
        like,
        share,
        favorite,
        dwellMs,
        tags: tagList(),
      });
    }
    for (let n = r.uint(); n > 0; n--) {
      const key = str();
      const parts: FollowPart[] = new Array(r.uint());
      for (let i = 0; i < parts.length; i++) {
        const inc = r.f64();
        parts[i] = { inc, tags: tagList() };
      }
      s.base.follows.set(key, parts);
    }
    let prev = ref;
    for (let n = r.uint(); n > 0; n--) {
      const t = prev + r.num();
      prev = t;
      const seq = s.seq - r.num();
      const type = str() as EventType;
      const key = str();
      const dwellMs = r.opt();
      // into the log's columns through one scratch event: no object or tags array an event
      const e = scratchEvent;
      e.tags.length = 0;
      for (let n = r.uint(); n > 0; n--) e.tags.push(str());
      e.t = t;
      e.seq = seq;
      e.type = type;
      e.key = key;
      e.dwellMs = dwellMs;
      s.events.push(e);
    }
    const seen: Seen = new Map();
    const count = r.uint();
    const top = r.num();
    for (let i = 0; i < count; i++) {
      const digest = r.digest();
      seen.set(digest, (top - r.num()) * 1000);
    }
    let legacyUntil =
      legacy === 0 ? (count > 0 ? top * 1000 : -Infinity) : legacy === 1 ? -Infinity : (legacy - 2) * 1000;
    const snapshotEnd = r.pos;
    while (r.pos < buf.length) {
      if (r.uint() !== TAIL) throw new Error(`no tail at byte ${r.pos - 1}`);
      for (let n = r.uint(); n > 0; n--) strings.push(r.str());
      if (scores) {
        readScoreChanges(r, str, scores);
        r.uint(); // the length of the rest
      }
      const added = r.uint();
      const top = r.num();
      for (let i = 0; i < added; i++) {
        const digest = r.digest();
        seen.set(digest, (top - r.num()) * 1000);
      }
      const kept = (top - r.num()) * 1000;
      for (const [digest, at] of seen) if (at < kept) seen.delete(digest);
      if (kept > legacyUntil) legacyUntil = -Infinity;
      const tailEvents: KeyedEvent[] = new Array(r.uint());
      let prev = s.newest ?? 0;
      for (let i = 0; i < tailEvents.length; i++) {
        const t = prev + r.num();
        prev = t;
        const type = str() as EventType;
        const key = str();
        const dwellMs = r.opt();
        const tags = tagList();
        tailEvents[i] = dwellMs === undefined ? { t, type, key, tags } : { t, type, key, tags, dwellMs };
      }
      if (!withEvents) continue;
      if (!timeline) throw new Error('a state with tails needs the timeline parameters to be read');
      addEvents(s, tailEvents, timeline);
    }
    if (r.pos !== buf.length) throw new Error(`${r.pos - buf.length} bytes missing`);
    const ids = new Map<string, number>();
    for (let i = 0; i < strings.length; i++) ids.set(strings[i]!, i);
    return {
      version,
      state: s,
      seen,
      packed: { ids, bytes: buf.length - bar, snapshotBytes: snapshotEnd - bar, scores: withScores },
      ...(scores && { scores }),
      legacyUntil,
    };
  } catch (err) {
    if (err instanceof AppError) throw err;
    // never heals by retrying: the consumer dead-letters the person's events (rebuild repairs the state)
    throw new AppError(
      InterestStoreErrors.BAD_STATE,
      `stored person state is not readable: ${(err as Error).message}`,
      { retryable: false },
    );
  }
}

/** Scratch of `decode`: one event on its way into its state's event log (which copies it). */
const scratchEvent: Omit<TimedEvent, 'tags'> & { tags: string[] } = { t: 0, seq: 0, type: 'click', key: '', tags: [] };

/** A packed state's string table, and a reader of the string its next number names (tails push theirs on). */
function readTable(r: Reader): { strings: string[]; str: () => string } {
  const strings: string[] = new Array(r.uint());
  for (let i = 0; i < strings.length; i++) strings[i] = r.str();
  const str = () => {
    const x = strings[r.uint()];
    if (x === undefined) throw new Error('string index out of range');
    return x;
  };
  return { strings, str };
}

/** A scores section (count, then (tag, float64)) into `into`. */
function readScores(r: Reader, str: () => string, into: Map<string, number>): void {
  for (let n = r.uint(); n > 0; n--) {
    const tag = str();
    into.set(tag, r.f64());
  }
}

/** A tail's score changes (scores set, then tags removed) applied to `into`. */
function readScoreChanges(r: Reader, str: () => string, into: Map<string, number>): void {
  readScores(r, str, into);
  for (let n = r.uint(); n > 0; n--) into.delete(str());
}

/** Skips a part by the byte length before it. */
function skip(r: Reader): void {
  const n = r.uint();
  r.pos += n;
}

/**
 * The current interest scores a stored state carries (format 0x03), tails applied, read without
 * decoding the rest (no replay, no scoring parameters); undefined for a state without them (the
 * packed form before, JSON): its scores are in `:int` (read.ts).
 */
export function storedScores(raw: Buffer): Map<string, number> | undefined {
  const bar = raw.indexOf(BAR);
  if (bar < 0 || raw[bar + 1] !== PACKED_SCORES) return undefined;
  try {
    const r = new Reader(raw, bar + 2);
    const { strings, str } = readTable(r);
    const flags = r.uint();
    if (flags & 2) r.num();
    if (flags & 1) r.num();
    r.uint(); // seq
    const scores = new Map<string, number>();
    readScores(r, str, scores);
    skip(r);
    while (r.pos < raw.length) {
      if (r.uint() !== TAIL) throw new Error(`no tail at byte ${r.pos - 1}`);
      for (let n = r.uint(); n > 0; n--) strings.push(r.str());
      readScoreChanges(r, str, scores);
      skip(r);
    }
    if (r.pos !== raw.length) throw new Error(`${r.pos - raw.length} bytes missing`);
    return scores;
  } catch (err) {
    throw new AppError(
      InterestStoreErrors.BAD_STATE,
      `stored person state is not readable: ${(err as Error).message}`,
      { retryable: false },
    );
  }
}

/**
 * Scratch of `topStoredScores` (synchronous, so one set serves every call; grown as needed): each
 * string's bytes as [start, end) (2 entries per string), each string's stored score and whether it
 * has one, the top string indices.
 */
let ranges = new Int32Array(256);
let scoreOf = new Float64Array(128);
let hasScore = new Uint8Array(128);
let topIds = new Int32Array(32);
/** Up to this many top scores are selected by insertion; more, by a sort. */
const INSERTION_MAX = 64;

/** `n` strings of the table read as byte ranges from `at` (string index) on; the new count. */
function readRanges(r: Reader, n: number, at: number): number {
  const total = at + n;
  if (ranges.length < 2 * total) {
    const grown = new Int32Array(Math.max(2 * total, 2 * ranges.length));
    grown.set(ranges);
    ranges = grown;
  }
  if (scoreOf.length < total) {
    const size = Math.max(total, 2 * scoreOf.length);
    const grown = new Float64Array(size);
    grown.set(scoreOf);
    scoreOf = grown;
    const grownHas = new Uint8Array(size);
    grownHas.set(hasScore);
    hasScore = grownHas;
  }
  hasScore.fill(0, at, total);
  for (let i = at; i < total; i++) {
    const len = r.uint();
    if (r.pos + len > r.buf.length) throw new Error('truncated');
    ranges[2 * i] = r.pos;
    ranges[2 * i + 1] = r.pos + len;
    r.pos += len;
  }
  return total;
}

/** A string index as read, checked against the table's `count`. */
function stringIndex(r: Reader, count: number): number {
  const i = r.uint();
  if (i >= count) throw new Error('string index out of range');
  return i;
}

/** A scores section (count, then (string index, float64)) into the scratch. */
function readScoresAt(r: Reader, count: number): void {
  for (let n = r.uint(); n > 0; n--) {
    const i = stringIndex(r, count);
    scoreOf[i] = r.f64();
    hasScore[i] = 1;
  }
}

/**
 * A state's current scores (format 0x03, after the bar at `bar`), tails applied, into the scratch: the string
 * table as byte ranges, each string's score and whether it has one. The number of strings.
 */
function scoresIntoScratch(raw: Buffer, bar: number): number {
  const r = new Reader(raw, bar + 2);
  let count = readRanges(r, r.uint(), 0);
  const flags = r.uint();
  if (flags & 2) r.num();
  if (flags & 1) r.num();
  r.uint(); // seq
  readScoresAt(r, count);
  skip(r);
  while (r.pos < raw.length) {
    if (r.uint() !== TAIL) throw new Error(`no tail at byte ${r.pos - 1}`);
    count = readRanges(r, r.uint(), count);
    readScoresAt(r, count);
    for (let m = r.uint(); m > 0; m--) hasScore[stringIndex(r, count)] = 0;
    skip(r);
  }
  if (r.pos !== raw.length) throw new Error(`${r.pos - raw.length} bytes missing`);
  return count;
}

/** A reading error as IST_BAD_STATE. */
const unreadable = (err: unknown) =>
  new AppError(InterestStoreErrors.BAD_STATE, `stored person state is not readable: ${(err as Error).message}`, {
    retryable: false,
  });

/** Whether string `a` comes before string `b` in Redis' order read highest first (score, then bytes; descending). */
function firstOf(raw: Buffer, a: number, b: number): boolean {
  const x = scoreOf[a]!;
  const y = scoreOf[b]!;
  if (x !== y) return x > y;
  return raw.compare(raw, ranges[2 * b], ranges[2 * b + 1], ranges[2 * a], ranges[2 * a + 1]) > 0; // a's bytes after b's
}

/**
 * The `limit` highest current scores a stored state carries (format 0x03), tails applied, in Redis'
 * order of a sorted set read highest first (stored score, then tag as UTF-8 bytes, both descending),
 * each given to `each` (tag, stored score); with `keep`, only the tags it accepts count. False for a
 * state without them (read them from `:int`, read.ts). The same scores as `storedScores` (which
 * reads the state the same way and throws the same errors), but without a string per table entry, a
 * Map, an entry array per score and a sort: the string table is read as byte ranges into scratch
 * arrays, the scores kept by string index (a tag is in the table once), the top selected in place
 * with ties compared as bytes, and only the chosen tags (and, with `keep`, the ones it is asked
 * about) decoded. For the profile read, where these allocations were most of what it allocated of
 * its own (BENCHMARKS.md "Reads"). `keep` and `each` must not call it again (they share the scratch).
 */
export function topStoredScores(
  raw: Buffer,
  limit: number,
  keep: ((tag: string) => boolean) | undefined,
  each: (tag: string, stored: number) => void,
): boolean {
  const bar = raw.indexOf(BAR);
  if (bar < 0 || raw[bar + 1] !== PACKED_SCORES) return false;
  let n = 0;
  try {
    const count = scoresIntoScratch(raw, bar);
    // the top `limit` string indices, best first: each scored string placed by insertion, or for a
    // long list (the interests route's pages read them all) the candidates sorted
    const k = Math.min(limit, count);
    if (topIds.length < k) topIds = new Int32Array(Math.max(k, 2 * topIds.length));
    if (k > 0 && k <= INSERTION_MAX) {
      for (let i = 0; i < count; i++) {
        if (hasScore[i] === 0) continue;
        if (n === k && !firstOf(raw, i, topIds[k - 1]!)) continue;
        if (keep && !keep(raw.toString('utf8', ranges[2 * i], ranges[2 * i + 1]))) continue;
        let j = n < k ? n++ : k - 1;
        for (; j > 0 && firstOf(raw, i, topIds[j - 1]!); j--) topIds[j] = topIds[j - 1]!;
        topIds[j] = i;
      }
    } else if (k > 0) {
      const ids: number[] = [];
      for (let i = 0; i < count; i++)
        if (hasScore[i] === 1 && (!keep || keep(raw.toString('utf8', ranges[2 * i], ranges[2 * i + 1])))) ids.push(i);
      ids.sort((a, b) => (a === b ? 0 : firstOf(raw, a, b) ? -1 : 1));
      n = Math.min(k, ids.length);
      for (let t = 0; t < n; t++) topIds[t] = ids[t]!;
    }
  } catch (err) {
    throw unreadable(err);
  }
  for (let t = 0; t < n; t++) {
    const i = topIds[t]!;
    each(raw.toString('utf8', ranges[2 * i], ranges[2 * i + 1]), scoreOf[i]!);
  }
  return true;
}

/**
 * Each tag whose current stored score in a stored state (format 0x03, tails applied) is at least
 * `min`, given to `each` (in the state's string order); false for a state without scores (read them
 * from `:int`, read.ts). The same scores as `storedScores` (read the same way, the same errors), but
 * like `topStoredScores` without a string per table entry or a Map per person: the follower mix's
 * top interests read 2 000 states a request and keep only the few strong tags of each, and those
 * per-person Maps were most of what a request allocated (its GC pauses, BENCHMARKS.md "Followers").
 * `each` must not call it or `topStoredScores` again (they share the scratch).
 */
export function storedScoresAtLeast(raw: Buffer, min: number, each: (tag: string) => void): boolean {
  const bar = raw.indexOf(BAR);
  if (bar < 0 || raw[bar + 1] !== PACKED_SCORES) return false;
  let count: number;
  try {
    count = scoresIntoScratch(raw, bar);
  } catch (err) {
    throw unreadable(err);
  }
  for (let i = 0; i < count; i++)
    if (hasScore[i] === 1 && scoreOf[i]! >= min) each(raw.toString('utf8', ranges[2 * i], ranges[2 * i + 1]));
  return true;
}

/** The JSON form of a state written before the packed one (read, never written). */
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

function decodeJsonState(text: string, decay: DecayParams): { state: PersonState; seen: Seen } {
  const json = JSON.parse(text) as Json;
  const s = emptyState();
  s.horizon = json.h;
  s.newest = json.n;
  s.seq = json.q;
  for (let i = 0; i + 1 < json.i.length; i += 2) s.base.interests.set(json.i[i] as string, json.i[i + 1] as number);
  for (const [k, start, last, comment, like, share, favorite, dwell, tags] of json.v) {
    s.base.visits.set(k, {
      start,
      fstart: forwardWeight(1, start, decay),
      last,
      comment,
      like,
      share,
      favorite,
      dwellMs: dwell ?? undefined,
      tags,
    });
  }
  for (const [k, ...rest] of json.f) {
    const parts: FollowPart[] = [];
    for (let i = 0; i + 1 < rest.length; i += 2) parts.push({ inc: rest[i] as number, tags: rest[i + 1] as string[] });
    s.base.follows.set(k as string, parts);
  }
  s.events = EventLog.of(
    json.e.map(([t, seq, type, key, tags, dwellMs]): TimedEvent => ({
      t,
      seq,
      type: type as EventType,
      key,
      tags,
      ...(dwellMs !== undefined && { dwellMs }),
    })),
  );
  const seen: Seen = new Map();
  if (json.d) {
    for (const entry of json.d.split(',')) {
      const colon = entry.indexOf(':');
      seen.set(parseInt(entry.slice(0, colon), 16), parseInt(entry.slice(colon + 1), 36) * 1000);
    }
  }
  return { state: s, seen };
}

/** The JSON form of earlier versions (for tests of the move to the packed form). */
export function encodeJsonState(version: string, s: PersonState, seen: Seen): string {
  const json: Json = {
    h: s.horizon,
    n: s.newest,
    q: s.seq,
    i: [...s.base.interests].flat(),
    v: [...s.base.visits].map(([k, v]) => [
      k,
      v.start,
      v.last,
      v.comment,
      v.like,
      v.share,
      v.favorite,
      v.dwellMs ?? null,
      v.tags,
    ]),
    f: [...s.base.follows].map(([k, parts]) => [k, ...parts.flatMap((p) => [p.inc, p.tags])]),
    e: [...s.events].map((e) =>
      e.dwellMs === undefined
        ? [e.t, e.seq, e.type, e.key, [...e.tags]]
        : [e.t, e.seq, e.type, e.key, [...e.tags], e.dwellMs],
    ),
    d: [...seen].map(([digest, at]) => `${digestHex(digest)}:${Math.floor(at / 1000).toString(36)}`).join(','),
  };
  return `${version}|${JSON.stringify(json)}`;
}

/**
 * The state of a person stored in the layout before event time (one sorted set of interests, a
 * hash of packed open visits, a hash of packed follow records, a sorted set of dedupe members;
 * see docs/operations.md): its interests, visits and follows become the base, and the newest
 * visit's last event the horizon, so events older than what was applied count as beyond the
 * window, as they did then; its dedupe members become the record.
 */
export function legacyState(
  interests: readonly string[],
  visits: Record<string, string>,
  follows: Record<string, string>,
  seenFlat: readonly string[],
): { state: PersonState; seen: Seen } {
  const s = emptyState();
  const base = emptyModel();
  for (let i = 0; i + 1 < interests.length; i += 2) base.interests.set(interests[i]!, Number(interests[i + 1]));
  for (const [key, raw] of Object.entries(visits)) {
    const nl = raw.indexOf('\n');
    const [start, fstart, last, comment, like, share, favorite, dwell] = raw
      .slice(0, nl)
      .split('|')
      .map(Number) as number[];
    const tags = raw.slice(nl + 1);
    const v: Visit = {
      start: start!,
      fstart: fstart!,
      last: last!,
      comment: comment!,
      like: like!,
      share: share!,
      favorite: favorite!,
      dwellMs: dwell! < 0 ? undefined : dwell,
      tags: tags === '' ? [] : tags.split('\t'),
    };
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
  for (let i = 0; i + 1 < seenFlat.length; i += 2)
    seen.set(digestOf(seenFlat[i]!), Math.floor(Number(seenFlat[i + 1]) / 1000) * 1000);
  return { state: s, seen };
}
