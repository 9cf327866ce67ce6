import type { EventType } from '@pstream/events';
import type { KeyedEvent } from './model';

export type TimedEvent = KeyedEvent & { seq: number };

/** An event's fields, its tags `count` of `tags` from `from` (a flat array of several events' tags). */
export type EventFields = (
  t: number,
  seq: number,
  type: EventType,
  key: string,
  dwellMs: number | undefined,
  tags: readonly string[],
  from: number,
  count: number,
) => void;

/** Whether an event at (`at`, `aseq`) sorts before one at (`t`, `seq`): by time, then by arrival. */
export const before = (at: number, aseq: number, t: number, seq: number) => at < t || (at === t && aseq < seq);

/**
 * A person's kept events (timeline.ts `PersonState.events`), sorted by (t, seq), held column by column: times,
 * arrival numbers and dwell in arrays of plain numbers (V8 keeps them unboxed, in one block each), types, keys and
 * every event's tags in flat arrays of strings. Not an object, a boxed time and a tags array per event: a scorer
 * keeps thousands of people's states for up to W of their events each (≈ 1 GB for a full cache of busy people,
 * whose full collections stall it); held this way a busy person's state takes 17 % less heap and a full collection
 * over them 28 % less time (BENCHMARKS.md "Scorer"). An event is made an object again only when it is read
 * (iteration: a replay, a fold), and such objects are short-lived.
 *
 * Iterating gives the events in order (so `toEqual` compares two logs event by event); the columns are private.
 */
export class EventLog implements Iterable<TimedEvent> {
  #t: number[] = [];
  #seq: number[] = [];
  /** The dwell reported, 0 where none was (`#hasDwell` 0): a column of numbers only stays unboxed. */
  #dwell: number[] = [];
  #hasDwell: number[] = [];
  #type: EventType[] = [];
  #key: string[] = [];
  /** How many of `#tags` each event has; its tags follow the previous events' there. */
  #tagCount: number[] = [];
  #tags: string[] = [];

  /** A log of `events`, already sorted by (t, seq). */
  static of(events: Iterable<TimedEvent>): EventLog {
    const log = new EventLog();
    for (const e of events) log.push(e);
    return log;
  }

  get length(): number {
    return this.#t.length;
  }

  /** Event `i`'s time. */
  t(i: number): number {
    return this.#t[i]!;
  }

  /** Event `i`'s arrival number. */
  seq(i: number): number {
    return this.#seq[i]!;
  }

  /** Appends an event that sorts after every one held (a decoded state's, in order); `e` is not kept. */
  push(e: Readonly<TimedEvent>): void {
    this.#t.push(e.t);
    this.#seq.push(e.seq);
    this.#dwell.push(e.dwellMs ?? 0);
    this.#hasDwell.push(e.dwellMs === undefined ? 0 : 1);
    this.#type.push(e.type);
    this.#key.push(e.key);
    this.#tagCount.push(e.tags.length);
    for (const tag of e.tags) this.#tags.push(tag);
  }

  /** Puts `e` in its place: after every event before it by (t, seq). */
  insert(e: TimedEvent): void {
    const n = this.#t.length;
    if (n === 0 || !before(e.t, e.seq, this.#t[n - 1]!, this.#seq[n - 1]!)) {
      this.push(e);
      return;
    }
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (before(this.#t[mid]!, this.#seq[mid]!, e.t, e.seq)) lo = mid + 1;
      else hi = mid;
    }
    let from = 0;
    for (let i = 0; i < lo; i++) from += this.#tagCount[i]!;
    this.#t.splice(lo, 0, e.t);
    this.#seq.splice(lo, 0, e.seq);
    this.#dwell.splice(lo, 0, e.dwellMs ?? 0);
    this.#hasDwell.splice(lo, 0, e.dwellMs === undefined ? 0 : 1);
    this.#type.splice(lo, 0, e.type);
    this.#key.splice(lo, 0, e.key);
    this.#tagCount.splice(lo, 0, e.tags.length);
    this.#tags.splice(from, 0, ...e.tags);
  }

  /** Forgets the first `n` events (all of them when `n` is more). */
  dropFirst(count: number): void {
    const n = Math.min(count, this.#t.length);
    if (n <= 0) return;
    let tags = 0;
    for (let i = 0; i < n; i++) tags += this.#tagCount[i]!;
    this.#t.splice(0, n);
    this.#seq.splice(0, n);
    this.#dwell.splice(0, n);
    this.#hasDwell.splice(0, n);
    this.#type.splice(0, n);
    this.#key.splice(0, n);
    this.#tagCount.splice(0, n);
    this.#tags.splice(0, tags);
  }

  /** Each event in order, as an object of its own (its tags a fresh array), with `seq` raised by `offset`. */
  *events(offset = 0): IterableIterator<TimedEvent> {
    let tag = 0;
    for (let i = 0; i < this.#t.length; i++) {
      const count = this.#tagCount[i]!;
      yield this.#event(i, tag, count, offset);
      tag += count;
    }
  }

  [Symbol.iterator](): IterableIterator<TimedEvent> {
    return this.events();
  }

  /**
   * `f` with each event in order (the first `upTo`, at most all), without an object per event (the replay, the
   * fold): one object and one tags array are filled in for each event in turn, so `f` must not keep them or its
   * tags (applyKeyed copies what it keeps).
   */
  forEach(f: (e: Readonly<TimedEvent>) => void, upTo = this.#t.length): void {
    const n = Math.min(upTo, this.#t.length);
    const tags: string[] = [];
    const e: TimedEvent = { type: 'click', key: '', tags, t: 0, seq: 0, dwellMs: undefined };
    let tag = 0;
    for (let i = 0; i < n; i++) {
      const count = this.#tagCount[i]!;
      tags.length = 0;
      for (let j = tag; j < tag + count; j++) tags.push(this.#tags[j]!);
      e.type = this.#type[i]!;
      e.key = this.#key[i]!;
      e.t = this.#t[i]!;
      e.seq = this.#seq[i]!;
      e.dwellMs = this.#hasDwell[i] === 1 ? this.#dwell[i]! : undefined;
      f(e);
      tag += count;
    }
  }

  /**
   * `f` with each event's fields in order, without making it an object (the encoder's walk): `tags` is the log's flat
   * tag array, the event's being `count` of them from `from`.
   */
  forEachField(f: EventFields): void {
    let tag = 0;
    for (let i = 0; i < this.#t.length; i++) {
      const count = this.#tagCount[i]!;
      f(
        this.#t[i]!,
        this.#seq[i]!,
        this.#type[i]!,
        this.#key[i]!,
        this.#hasDwell[i] === 1 ? this.#dwell[i]! : undefined,
        this.#tags,
        tag,
        count,
      );
      tag += count;
    }
  }

  #event(i: number, tag: number, count: number, offset: number): TimedEvent {
    const e: TimedEvent = {
      type: this.#type[i]!,
      key: this.#key[i]!,
      tags: this.#tags.slice(tag, tag + count),
      t: this.#t[i]!,
      seq: this.#seq[i]! + offset,
    };
    if (this.#hasDwell[i] === 1) e.dwellMs = this.#dwell[i]!;
    return e;
  }
}
