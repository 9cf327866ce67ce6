import {
  applyKeyed,
  emptyModel,
  mergeModels,
  type KeyedEvent,
  type PersonModel,
  type ScoreLog,
  type ScoringParams,
  type Visit,
} from './model';
import { before, EventLog, type TimedEvent } from './event-log';

export { EventLog, type TimedEvent } from './event-log';

/**
 * §4.1 by event time: one person's events give the same scores whatever order they arrive in,
 * as long as each arrives within the lateness window W behind the newest event time already
 * applied for that person.
 *
 * A person's state is a `base` — the model after every event older than `horizon`, applied in
 * event-time order — and the `events` at or after the horizon, kept sorted. The scores are the
 * base with the kept events replayed on top (`replay`), which is the time-sorted stream's result.
 * The horizon trails the newest event time by W: as it moves, the events it passes are folded
 * into the base (in order) and forgotten. An event that arrives behind the horizon (more than W
 * late) cannot be put in its place any more: it is applied to the base on its own (`applyKeyed`'s
 * out-of-order rules) and reported as such.
 *
 * Events with the same event time replay in arrival order (`seq`).
 */
export type TimelineParams = ScoringParams & {
  /** W: how far behind the newest applied event time an event still takes its place (ms). */
  latenessMs: number;
  /** Interest tags kept per person; beyond it the lowest stored scores are dropped. */
  maxTags: number;
};

export type PersonState = {
  base: PersonModel;
  /** Events older than this are in `base`; null while nothing was folded. */
  horizon: number | null;
  /** The newest event time applied (null: none yet). */
  newest: number | null;
  /** Arrival counter: the next event's `seq`. */
  seq: number;
  /** The events at or after the horizon, sorted by (t, seq) (held compactly: event-log.ts). */
  events: EventLog;
};

/** How an event took its place: in order, behind newer ones within W, or beyond W (on its own). */
export type Arrival = 'in_order' | 'reordered' | 'beyond_window';

export function emptyState(): PersonState {
  return { base: emptyModel(), horizon: null, newest: null, seq: 0, events: new EventLog() };
}

/** Adds one person's events, in arrival order, to their state (mutating it); returns how each arrived. */
export function addEvents(s: PersonState, events: readonly KeyedEvent[], p: TimelineParams): Arrival[] {
  return addOwnedEvents(
    s,
    events.map((e) => ({ ...e, seq: 0 })),
    p,
  );
}

/** `addEvents` for events the caller gives up (a store's own fresh objects): each gets its `seq` (no copy first). */
export function addOwnedEvents(s: PersonState, events: readonly TimedEvent[], p: TimelineParams): Arrival[] {
  const arrivals: Arrival[] = [];
  for (const timed of events) {
    timed.seq = s.seq++;
    const t = timed.t;
    if (s.horizon !== null && t < s.horizon) {
      applyKeyed(s.base, timed, p);
      trimInterests(s.base.interests, p.maxTags);
      arrivals.push('beyond_window');
      continue;
    }
    arrivals.push(s.newest !== null && t < s.newest ? 'reordered' : 'in_order');
    s.events.insert(timed);
    if (s.newest === null || t > s.newest) s.newest = t;
  }
  if (s.newest !== null) foldTo(s, s.newest - p.latenessMs, p);
  return arrivals;
}

/** Moves the horizon up to `horizon`: the events it passes go into the base, in order. */
function foldTo(s: PersonState, horizon: number, p: TimelineParams): void {
  if (s.horizon !== null && horizon <= s.horizon) return;
  let n = 0;
  while (n < s.events.length && s.events.t(n) < horizon) n++;
  s.events.forEach((e) => applyKeyed(s.base, e, p), n);
  s.events.dropFirst(n);
  s.horizon = horizon;
  // No event at or after the horizon can join a visit whose last event is a gap or more before it.
  // (forEach: no [key, visit] array per visit, every fold; deleting the entry being visited is safe)
  s.base.visits.forEach((v, key, visits) => {
    if (horizon - v.last >= p.visitGapMs) visits.delete(key);
  });
  trimInterests(s.base.interests, p.maxTags);
}

function cloneVisit(v: Visit): Visit {
  return { ...v, tags: [...v.tags] };
}

/** The person's interests: the base with the kept events replayed on top, at most `maxTags`. */
export function replay(s: PersonState, p: TimelineParams): Map<string, number> {
  return replayModel(s, p).interests;
}

/**
 * The whole model after the replay (`replay`'s interests, with the visits and follows they end with): a `tip` for
 * `advanceTip`.
 */
export function replayModel(s: PersonState, p: TimelineParams): PersonModel {
  const m: PersonModel = {
    interests: new Map(s.base.interests),
    visits: new Map([...s.base.visits].map(([k, v]) => [k, cloneVisit(v)])),
    follows: new Map(s.base.follows),
  };
  s.events.forEach((e) => applyKeyed(m, e, p));
  trimInterests(m.interests, p.maxTags);
  return m;
}

/**
 * `replayModel(s)` after `addEvents(s, events)`, from the model `tip` that `replayModel` gave (or
 * this function) before it, without replaying the kept events again: when every one of the events
 * arrived in order, the replay is the tip with them applied after it — the same additions in the
 * same order, so the same numbers to the bit. Returns undefined where that does not hold and the
 * caller must replay: an event arrived out of order, or a per-person tag cap (`maxTags`) trimmed
 * or may have trimmed the base or the result (a trim in the middle is not a trim at the end).
 * Visits that the horizon closed stay in the tip: no later event in order can join them, and
 * pruning drops closed visits first. Mutates the tip's visits and follows (its interests are
 * copied): the caller gives up the old tip.
 */
export function advanceTip(
  tip: PersonModel,
  s: PersonState,
  events: readonly KeyedEvent[],
  arrivals: readonly Arrival[],
  p: TimelineParams,
): PersonModel | undefined {
  if (!continuesInOrder(tip, s, arrivals, p)) return undefined;
  const m: PersonModel = { interests: new Map(tip.interests), visits: tip.visits, follows: tip.follows };
  return advanceTipInPlace(m, s, events, arrivals, p, new Map());
}

/** Whether `advanceTip` can continue the tip (before applying anything). */
function continuesInOrder(tip: PersonModel, s: PersonState, arrivals: readonly Arrival[], p: TimelineParams): boolean {
  return !(
    arrivals.some((a) => a !== 'in_order') ||
    s.base.interests.size >= p.maxTags ||
    tip.interests.size >= p.maxTags
  );
}

/**
 * `advanceTip` without a copy of the tip's scores: the events are applied to `tip` itself, and `log` (empty)
 * records the score each changed tag had before them (model.ts ScoreLog) — what changed, for the caller, without
 * copying the scores to compare (loggedDiff still walks the scores after, to keep scoreDiff's order). Returns `tip`, or undefined where `advanceTip` does; the tip's scores are then put back as
 * they were (and `log` emptied), so they stay the scores before the events (its visits and follows do not).
 */
export function advanceTipInPlace(
  tip: PersonModel,
  s: PersonState,
  events: readonly KeyedEvent[],
  arrivals: readonly Arrival[],
  p: TimelineParams,
  log: ScoreLog,
): PersonModel | undefined {
  if (!continuesInOrder(tip, s, arrivals, p)) return undefined;
  for (const e of events) applyKeyed(tip, e, p, log);
  if (tip.interests.size < p.maxTags) return tip;
  for (const [tag, was] of log) {
    if (was === undefined) tip.interests.delete(tag);
    else tip.interests.set(tag, was);
  }
  log.clear();
  return undefined;
}

/**
 * Folds a merged person's state into the receiver's (§4.4): both bases are brought to the same
 * horizon and merged (`mergeModels`), and the kept events of both are replayed together by event
 * time, so an anonymous event within W of the merged profile's newest event joins the user's visits.
 */
export function mergeStates(into: PersonState, from: PersonState, p: TimelineParams): void {
  const horizons = [into.horizon, from.horizon].filter((h): h is number => h !== null);
  if (horizons.length > 0) {
    const h = Math.max(...horizons);
    foldTo(into, h, p);
    foldTo(from, h, p);
  }
  mergeModels(into.base, from.base, p);
  const offset = into.seq;
  const theirs = [...from.events.events(offset)];
  into.seq += from.seq;
  into.events = EventLog.of(mergeSorted([...into.events], theirs));
  if (from.newest !== null && (into.newest === null || from.newest > into.newest)) into.newest = from.newest;
  if (into.newest !== null) foldTo(into, into.newest - p.latenessMs, p);
  trimInterests(into.base.interests, p.maxTags);
}

function mergeSorted(a: readonly TimedEvent[], b: readonly TimedEvent[]): TimedEvent[] {
  const out: TimedEvent[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && before(a[i]!.t, a[i]!.seq, b[j]!.t, b[j]!.seq))) out.push(a[i++]!);
    else out.push(b[j++]!);
  }
  return out;
}

/** Bounded memory: keeps the `max` highest stored (= highest decayed) scores; ties by tag. */
export function trimInterests(interests: Map<string, number>, max: number): void {
  if (interests.size <= max) return;
  const order = [...interests].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  for (let i = 0; i < order.length - max; i++) interests.delete(order[i]![0]);
}
