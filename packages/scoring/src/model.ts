import {
  EVENT_ROLES,
  isSocialAction,
  SOCIAL_ACTIONS,
  type EventType,
  type SocialAction,
  type TargetType,
} from '@pstream/events';
import { forwardWeight, type DecayParams } from './decay';
import { explicitTags, targetTag } from './tags';
import { DEFAULT_WEIGHTS, dwellFactor, type Weights } from './weights';

/**
 * The streaming interest model of docs/model.md §4.1 as a pure state machine over one person's events in
 * processing order. Fed the events in event-time order (timeline.ts), it gives the §4.1 scores;
 * the rules below only matter for an event applied out of order (more than W late).
 *
 * Rules beyond the contract's text (docs/model.md) (written down in services/scorer/README.md):
 * - A non-click visit event joins the open visit on its target when
 *   `start − gap < t < last + gap`: a late event (older than the visit's last event, e.g. a dwell
 *   report that overtook nothing but was stamped earlier) still joins the visit it belongs to.
 * - A new visit becomes the target's open visit unless the current open visit's last event is
 *   later than it; a late event that cannot join therefore counts as a one-event visit of its own
 *   without hijacking the visit in progress.
 * - The visit keeps its opening event's time as its start: the weight counts there.
 */
export type ScoringParams = {
  weights: Weights;
  /** Visit gap: a joining event must be less than this after the visit's last event (ms). */
  visitGapMs: number;
  decay: DecayParams;
  /** Open visits kept per person; beyond it closed ones, then the least recent, are dropped. */
  maxOpenVisits: number;
};

/** The actions a visit counts, each weighed by its own weight: the social actions of packages/events. */
export const VISIT_ACTIONS = SOCIAL_ACTIONS;
export type VisitAction = SocialAction;

/** What the model needs of one event; tags are the event's own (or the catalog's), without the implicit tag. */
export type ScoringEvent = {
  type: EventType;
  target: { type: TargetType; id: string };
  tags: readonly string[];
  occurredMs: number;
  dwellMs?: number;
};

export type Visit = Record<VisitAction, number> & {
  start: number;
  /** 2^((start − L)/H), computed once when the visit opens. */
  fstart: number;
  last: number;
  /** Total dwell reported so far; undefined while none was. */
  dwellMs: number | undefined;
  /** Union of the explicit tags of the visit's events (the implicit target tag is implied). */
  tags: string[];
};

/** What one follow added: its forward-decayed weight on each of its tags (implicit tag included). */
export type FollowPart = { inc: number; tags: string[] };

export type PersonModel = {
  /** tag → forward-decayed score Σ w·2^((t−L)/H). */
  interests: Map<string, number>;
  /** `type:id` of the target → its open visit. */
  visits: Map<string, Visit>;
  /** `type:id` → what the follow(s) of it added (several after a merge of two followers). */
  follows: Map<string, FollowPart[]>;
};

export function emptyModel(): PersonModel {
  return { interests: new Map(), visits: new Map(), follows: new Map() };
}

/** Visit weight `(1 + 0.5·comments + 0.5·likes + 2·shares + 1·favorites) × f(total dwell)`. */
export function visitWeight(v: Pick<Visit, VisitAction | 'dwellMs'>, w: Weights = DEFAULT_WEIGHTS): number {
  let behaviour = w.visitBase;
  for (const action of VISIT_ACTIONS) behaviour += w[action] * v[action];
  return behaviour * dwellFactor(v.dwellMs, w);
}

/**
 * The scores a tag had before the events being applied first changed it (undefined: it had none), for
 * a caller that applies events in place and wants what changed without a copy of every score
 * (`advanceTipInPlace`). A tag is recorded on its first change only.
 */
export type ScoreLog = Map<string, number | undefined>;

function note(log: ScoreLog | undefined, interests: Map<string, number>, tag: string): void {
  if (log !== undefined && !log.has(tag)) log.set(tag, interests.get(tag));
}

function add(interests: Map<string, number>, tag: string, inc: number, log?: ScoreLog): void {
  note(log, interests, tag);
  interests.set(tag, (interests.get(tag) ?? 0) + inc);
}

/**
 * A change of a visit's weight on a tag it already gave weight to. A tag that is no longer
 * stored (dropped by the per-person tag cap) is not revived by a bare difference.
 */
function addDelta(interests: Map<string, number>, tag: string, delta: number, log?: ScoreLog): void {
  const before = interests.get(tag);
  if (before !== undefined && delta !== 0) {
    note(log, interests, tag);
    interests.set(tag, before + delta);
  }
}

/** Removes `inc` from a tag; a tag left at (float) zero by the removal disappears. */
function subtract(interests: Map<string, number>, tag: string, inc: number, log?: ScoreLog): void {
  const before = interests.get(tag);
  if (before === undefined) return;
  note(log, interests, tag);
  const after = before - inc;
  if (Math.abs(after) <= 1e-9 * Math.abs(inc)) interests.delete(tag);
  else interests.set(tag, after);
}

/** Applies one event to a person's model (mutating it) and returns the tag increments it made. */
export function applyEvent(m: PersonModel, e: ScoringEvent, p: ScoringParams): Map<string, number> {
  const before = new Map(m.interests);
  applyInPlace(m, e, p);
  const changes = new Map<string, number>();
  for (const [tag, v] of m.interests) if (v !== before.get(tag)) changes.set(tag, v - (before.get(tag) ?? 0));
  for (const [tag, v] of before) if (!m.interests.has(tag)) changes.set(tag, -v);
  return changes;
}

/**
 * An event as the model keeps it: its target as the `type:id` key (its implicit tag) and its
 * explicit tags already without the implicit one (`explicitTags`).
 */
export type KeyedEvent = { type: EventType; key: string; tags: readonly string[]; t: number; dwellMs?: number };

/** The keyed form of an event. */
export function keyedEvent(e: ScoringEvent): KeyedEvent {
  return {
    type: e.type,
    key: targetTag(e.target),
    tags: explicitTags(e.tags, e.target),
    t: e.occurredMs,
    ...(e.dwellMs !== undefined && { dwellMs: e.dwellMs }),
  };
}

function applyInPlace(m: PersonModel, e: ScoringEvent, p: ScoringParams): void {
  applyKeyed(m, keyedEvent(e), p);
}

/** Applies one keyed event to a person's model, mutating it; `log` records the scores it changes first (ScoreLog). */
export function applyKeyed(m: PersonModel, e: KeyedEvent, p: ScoringParams, log?: ScoreLog): void {
  const { key, t } = e;
  const w = p.weights;
  const tags = e.tags;
  const role = EVENT_ROLES[e.type];
  switch (role) {
    case 'purchase': {
      const inc = forwardWeight(w.purchase, t, p.decay);
      for (const tag of tags) add(m.interests, tag, inc, log);
      add(m.interests, key, inc, log);
      return;
    }
    case 'follow': {
      if (m.follows.has(key)) return;
      const part = { inc: forwardWeight(w.follow, t, p.decay), tags: [...tags, key] };
      for (const tag of part.tags) add(m.interests, tag, part.inc, log);
      m.follows.set(key, [part]);
      return;
    }
    case 'unfollow': {
      const parts = m.follows.get(key);
      if (!parts) return;
      for (const part of parts) for (const tag of part.tags) subtract(m.interests, tag, part.inc, log);
      m.follows.delete(key);
      return;
    }
    case 'visit':
    case 'dwell':
    case 'social':
      applyVisitEvent(m, e, key, tags, p, log);
      return;
    default:
      // A role added to EVENT_ROLES without a rule here fails to compile.
      return unhandledRole(role);
  }
}

function unhandledRole(role: never): never {
  throw new Error(`no scoring rule for the event role ${String(role)}`);
}

function applyVisitEvent(
  m: PersonModel,
  e: KeyedEvent,
  key: string,
  tags: readonly string[],
  p: ScoringParams,
  log: ScoreLog | undefined,
): void {
  const t = e.t;
  const open = m.visits.get(key);
  const joins =
    EVENT_ROLES[e.type] !== 'visit' &&
    open !== undefined &&
    t > open.start - p.visitGapMs &&
    t - open.last < p.visitGapMs;
  if (joins) {
    const oldWeight = visitWeight(open, p.weights);
    record(open, e);
    open.last = Math.max(open.last, t);
    const newWeight = visitWeight(open, p.weights);
    const delta = (newWeight - oldWeight) * open.fstart;
    // (loops, not spread arrays or a Set: no objects per event; the same additions in the same order)
    const had = open.tags.length;
    for (let i = 0; i < had; i++) addDelta(m.interests, open.tags[i]!, delta, log);
    addDelta(m.interests, key, delta, log);
    for (const tag of tags) {
      if (open.tags.includes(tag)) continue;
      open.tags.push(tag);
      add(m.interests, tag, newWeight * open.fstart, log);
    }
    return;
  }
  const visit: Visit = {
    start: t,
    fstart: forwardWeight(1, t, p.decay),
    last: t,
    ...NO_ACTIONS,
    dwellMs: undefined,
    tags: tags.slice(),
  };
  record(visit, e);
  const inc = visitWeight(visit, p.weights) * visit.fstart;
  for (const tag of visit.tags) add(m.interests, tag, inc, log);
  add(m.interests, key, inc, log);
  if (open === undefined || t >= open.last) {
    m.visits.set(key, visit);
    pruneVisits(m, t, p.visitGapMs, p.maxOpenVisits);
  }
}

/** A visit's action counts, all zero. */
export function noActions(): Record<VisitAction, number> {
  return Object.fromEntries(VISIT_ACTIONS.map((a) => [a, 0])) as Record<VisitAction, number>;
}

/** `noActions()` once, spread into each new visit (no entries array per visit). */
const NO_ACTIONS: Readonly<Record<VisitAction, number>> = Object.freeze(noActions());

function record(v: Visit, e: KeyedEvent): void {
  if (EVENT_ROLES[e.type] === 'dwell') v.dwellMs = (v.dwellMs ?? 0) + (e.dwellMs ?? 0);
  else if (isSocialAction(e.type)) v[e.type] += 1;
}

/** Keeps at most `maxOpenVisits`: visits closed at `t` go first, then the least recent. */
function pruneVisits(m: PersonModel, t: number, gapMs: number, max: number): void {
  if (m.visits.size <= max) return;
  for (const [k, v] of m.visits) if (t - v.last >= gapMs) m.visits.delete(k);
  while (m.visits.size > max) {
    // least recent first; ties by key, so the result does not depend on insertion order
    let oldest: string | undefined;
    let oldestLast = Infinity;
    for (const [k, v] of m.visits) {
      if (v.last < oldestLast || (v.last === oldestLast && k < oldest!)) {
        oldest = k;
        oldestLast = v.last;
      }
    }
    m.visits.delete(oldest!);
  }
}

/**
 * Folds an anonymous person's model into a known person's (docs/model.md §4.4). Interests add up, which
 * is exact under forward decay; follows of the same target keep both parts, so an unfollow
 * removes both; of two open visits on one target the more recent stays open (the other's weight
 * is already counted and stays).
 */
export function mergeModels(
  into: PersonModel,
  from: PersonModel,
  p: Pick<ScoringParams, 'maxOpenVisits' | 'visitGapMs'>,
): void {
  for (const [tag, v] of from.interests) add(into.interests, tag, v);
  for (const [k, parts] of from.follows) into.follows.set(k, [...(into.follows.get(k) ?? []), ...parts]);
  let latest = -Infinity;
  for (const [k, v] of from.visits) {
    const mine = into.visits.get(k);
    if (mine === undefined || v.last > mine.last) into.visits.set(k, v);
    latest = Math.max(latest, v.last);
  }
  if (latest > -Infinity) pruneVisits(into, latest, p.visitGapMs, p.maxOpenVisits);
}
