import { EVENT_TYPES } from '@pstream/events';
import fc from 'fast-check';
import {
  addEvents,
  advanceTip,
  advanceTipInPlace,
  applyKeyed,
  emptyModel,
  emptyState,
  keyedEvent,
  mergeStates,
  replay,
  replayModel,
  type Arrival,
  type KeyedEvent,
  type PersonModel,
  type PersonState,
  type ScoreLog,
  type ScoringEvent,
  type TimelineParams,
} from '../src';
import { testTimelineParams } from '../src/testing';

const L = Date.parse('2026-01-01T00:00:00Z');
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const W = 48 * HOUR;
const params: TimelineParams = testTimelineParams({ maxOpenVisits: 3, latenessMs: W });
const targets = ['p-1', 'p-2', 'p-3', 'p-4'].map((id) => ({ type: 'product' as const, id }));

/** Events over `days`, on few targets and minutes apart, so visits join, bridge and close. */
const eventArb = (days: number): fc.Arbitrary<ScoringEvent> =>
  fc.record({
    type: fc.constantFrom(...EVENT_TYPES),
    target: fc.constantFrom(...targets),
    tags: fc.subarray(['category:dress', 'brand:acme', 'style:casual']),
    occurredMs: fc.integer({ min: 0, max: days * 24 * 12 - 1 }).map((x) => L + x * 5 * MIN),
    dwellMs: fc.integer({ min: 0, max: 90_000 }),
  });
/** Distinct times (one time-sorted stream) and, per event, how long after its time it arrives (< W). */
const delayed = (days: number) =>
  fc.uniqueArray(fc.record({ e: eventArb(days), delay: fc.integer({ min: 0, max: W - 1 }) }), {
    maxLength: 80,
    selector: (x) => x.e.occurredMs,
  });

function sortedModel(events: readonly ScoringEvent[]): Map<string, number> {
  const m = emptyModel();
  for (const e of [...events].sort((a, b) => a.occurredMs - b.occurredMs)) applyKeyed(m, keyedEvent(e), params);
  return m.interests;
}

function expectClose(got: Map<string, number>, want: Map<string, number>): void {
  for (const tag of new Set([...got.keys(), ...want.keys()])) {
    const g = got.get(tag) ?? 0;
    const w = want.get(tag) ?? 0;
    if (Math.abs(g - w) > 1e-9 * Math.max(1e-6, Math.abs(w))) throw new Error(`${tag}: ${g} ≠ ${w}`);
  }
}

/** Arrival order: each event after every event whose time is before its time plus its delay. */
const arrivalOrder = (xs: readonly { e: ScoringEvent; delay: number }[]): KeyedEvent[] =>
  [...xs].sort((a, b) => a.e.occurredMs + a.delay - (b.e.occurredMs + b.delay)).map((x) => keyedEvent(x.e));

describe('scores by event time (§4.1, lateness window W)', () => {
  it('gives the time-sorted stream’s scores for any arrival order within W, in any batches', () => {
    fc.assert(
      fc.property(delayed(4), fc.integer({ min: 1, max: 9 }), (xs, size) => {
        const s = emptyState();
        const arrivals = arrivalOrder(xs);
        for (let i = 0; i < arrivals.length; i += size) {
          const kinds = addEvents(s, arrivals.slice(i, i + size), params);
          expect(kinds).not.toContain('beyond_window');
        }
        expectClose(replay(s, params), sortedModel(xs.map((x) => x.e)));
      }),
      { numRuns: 300 },
    );
  });

  it('puts a like that arrives before its click into the click’s visit, and a late unfollow removes its follow', () => {
    const s = emptyState();
    const like = keyedEvent({ type: 'like', target: targets[0]!, tags: [], occurredMs: L + MIN });
    const click = keyedEvent({ type: 'click', target: targets[0]!, tags: [], occurredMs: L });
    const unfollow = keyedEvent({ type: 'unfollow', target: targets[1]!, tags: [], occurredMs: L + 2 * HOUR });
    const follow = keyedEvent({ type: 'follow', target: targets[1]!, tags: [], occurredMs: L + HOUR });
    expect(addEvents(s, [like, unfollow, click, follow], params)).toEqual([
      'in_order',
      'in_order',
      'reordered',
      'reordered',
    ]);
    expect(Object.fromEntries(replay(s, params))).toEqual({ 'product:p-1': 1.5 * 2 ** (0 / (30 * DAY)) });
  });

  it('keeps only the last W of events and applies an event beyond W on its own', () => {
    const s = emptyState();
    addEvents(s, [keyedEvent({ type: 'click', target: targets[0]!, tags: [], occurredMs: L })], params);
    addEvents(s, [keyedEvent({ type: 'purchase', target: targets[1]!, tags: [], occurredMs: L + W + HOUR })], params);
    expect(s.events).toHaveLength(1);
    expect(s.horizon).toBe(L + HOUR);
    const kinds = addEvents(
      s,
      [keyedEvent({ type: 'like', target: targets[0]!, tags: [], occurredMs: L + MIN })],
      params,
    );
    expect(kinds).toEqual(['beyond_window']);
    // the click's visit closed before the horizon and was forgotten: the like counts as a visit of its own
    expect(replay(s, params).get('product:p-1')).toBeCloseTo(1 + 1.5 * 2 ** (MIN / (30 * DAY)), 12);
  });

  it('merges two people’s states into the time-sorted union of their events, all within W', () => {
    fc.assert(
      fc.property(delayed(2), fc.array(fc.boolean(), { minLength: 1 }), (xs, sides) => {
        const a = emptyState();
        const b = emptyState();
        const arrivals = arrivalOrder(xs);
        arrivals.forEach((e, i) => addEvents(sides[i % sides.length] ? a : b, [e], params));
        mergeStates(a, b, params);
        expectClose(replay(a, params), sortedModel(xs.map((x) => x.e)));
      }),
      { numRuns: 300 },
    );
  });
});

describe('advanceTip (the replay continued by events in order)', () => {
  const tight: TimelineParams = { ...params, maxOpenVisits: 2, maxTags: 6 };
  /**
   * Random streams, in order or not, added in batches; `step` continues the tip over each batch (undefined: it does
   * not answer) and checks it against `full`, the replay of everything added so far.
   */
  const eachBatch = (
    step: (
      tip: PersonModel,
      s: PersonState,
      batch: KeyedEvent[],
      kinds: Arrival[],
      p: TimelineParams,
      full: PersonModel,
    ) => PersonModel | undefined,
  ) =>
    fc.assert(
      fc.property(delayed(6), fc.integer({ min: 1, max: 6 }), fc.boolean(), (xs, size, inOrder) => {
        const arrivals = inOrder
          ? [...xs].sort((a, b) => a.e.occurredMs - b.e.occurredMs).map((x) => keyedEvent(x.e))
          : arrivalOrder(xs);
        for (const p of [params, tight]) {
          const s = emptyState();
          let tip = replayModel(s, p);
          for (let i = 0; i < arrivals.length; i += size) {
            const batch = arrivals.slice(i, i + size);
            const kinds = addEvents(s, batch, p);
            const full = replayModel(s, p);
            tip = step(tip, s, batch, kinds, p, full) ?? full;
          }
        }
      }),
      { numRuns: 300 },
    );

  it('gives the full replay’s model, to the bit, whenever it answers', () => {
    let continued = 0;
    eachBatch((tip, s, batch, kinds, p, full) => {
      const next = advanceTip(tip, s, batch, kinds, p);
      if (next) {
        expect(next.interests).toEqual(full.interests);
        continued++;
      }
      return next;
    });
    expect(continued).toBeGreaterThan(300);
  });

  it('in place: the same model, a log that gives back the scores before, and nothing changed when it does not answer', () => {
    const outcomes = { continued: 0, refused: 0 };
    eachBatch((tip, s, batch, kinds, p, full) => {
      const before = new Map(tip.interests);
      const log: ScoreLog = new Map();
      const next = advanceTipInPlace(tip, s, batch, kinds, p, log);
      if (next) {
        expect(next).toBe(tip);
        expect(next.interests).toEqual(full.interests);
        // the scores before: the log's where it has the tag, the tip's elsewhere
        const restored = new Map<string, number>();
        for (const tag of new Set([...next.interests.keys(), ...log.keys()])) {
          const was = log.has(tag) ? log.get(tag) : next.interests.get(tag);
          if (was !== undefined) restored.set(tag, was);
        }
        expect(restored).toEqual(before);
        outcomes.continued++;
      } else {
        expect(tip.interests).toEqual(before);
        expect(log.size).toBe(0);
        outcomes.refused++;
      }
      return next;
    });
    expect(outcomes.continued).toBeGreaterThan(300);
    expect(outcomes.refused).toBeGreaterThan(0);
  });
});
