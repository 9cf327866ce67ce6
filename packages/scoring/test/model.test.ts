import { EVENT_TYPES } from '@pstream/events';
import fc from 'fast-check';
import {
  applyEvent,
  emptyModel,
  mergeModels,
  tagValue,
  visitWeight,
  type PersonModel,
  type ScoringEvent,
  type ScoringParams,
} from '../src';
import { testScoringParams } from '../src/testing';

const L = Date.parse('2026-01-01T00:00:00Z');
const MIN = 60_000;
const DAY = 86_400_000;
const params: ScoringParams = testScoringParams();
const product = { type: 'product' as const, id: 'p-1' };

/** Events at the landmark have forward factor 1, so stored scores are the seed's plain weights. */
function run(events: Partial<ScoringEvent>[], p = params): PersonModel {
  const m = emptyModel();
  for (const e of events) applyEvent(m, { type: 'click', target: product, tags: [], occurredMs: L, ...e }, p);
  return m;
}
const score = (m: PersonModel, tag = 'product:p-1') => m.interests.get(tag);

describe('visits (seed 001: behaviour × dwell)', () => {
  it('scores a bare click 1 (doing nothing scores 1)', () => {
    expect(score(run([{ type: 'click' }]))).toBe(1);
  });

  it('scores click + like + share + 45 s dwell as (1 + 0.5 + 2) × 1 = 3.5', () => {
    const m = run([
      { type: 'click' },
      { type: 'like', occurredMs: L + MIN },
      { type: 'share', occurredMs: L + 2 * MIN },
      { type: 'dwell', dwellMs: 45_000, occurredMs: L + 3 * MIN },
    ]);
    expect(score(m)).toBe(3.5);
  });

  it('scores click + comment + favorite + 9,999 ms dwell as (1 + 0.5 + 1) × 0.5 = 1.25', () => {
    expect(
      score(run([{ type: 'click' }, { type: 'comment' }, { type: 'favorite' }, { type: 'dwell', dwellMs: 9_999 }])),
    ).toBe(1.25);
  });

  it.each([
    [9_999, 0.5],
    [10_000, 1],
    [60_000, 1],
    [60_001, 2],
  ])('a click with %p ms of dwell weighs %p', (ms, w) => {
    expect(score(run([{ type: 'click' }, { type: 'dwell', dwellMs: ms }]))).toBe(w);
  });

  it('uses the total dwell of the visit and counts only its current weight, not the steps', () => {
    // 5 s (f = 0.5) then 6 s more: 11 s in total, f = 1 — the score is 1, not 0.5 + 1
    const m = run([
      { type: 'click' },
      { type: 'dwell', dwellMs: 5_000 },
      { type: 'dwell', dwellMs: 6_000, occurredMs: L + MIN },
    ]);
    expect(score(m)).toBe(1);
    expect(m.visits.get('product:p-1')?.dwellMs).toBe(11_000);
  });

  it('opens a new visit for a second look 30 minutes or more after the last event, and joins one just under', () => {
    const joined = run([{ type: 'click' }, { type: 'share', occurredMs: L + 30 * MIN - 1 }]);
    expect(score(joined)).toBe(3); // one visit: 1 + 2
    const apart = run([{ type: 'click' }, { type: 'share', occurredMs: L + 30 * MIN }]);
    expect(score(apart)).toBeCloseTo(1 + 3 * 2 ** ((30 * MIN) / (30 * DAY)), 12); // two visits: 1, and 3 at its own time
  });

  it('measures the gap from the last event, so a long visit keeps growing', () => {
    const m = run([
      { type: 'click' },
      { type: 'like', occurredMs: L + 20 * MIN },
      { type: 'like', occurredMs: L + 40 * MIN },
    ]);
    expect(score(m)).toBe(2); // 1 + 0.5 + 0.5, all at the visit's start
  });

  it('lets a click always open a new visit', () => {
    expect(score(run([{ type: 'click' }, { type: 'click' }]))).toBe(2);
  });

  it('counts the weight at the visit start time, so a late action does not move it', () => {
    const t = L + 10 * DAY;
    const m = run([
      { type: 'click', occurredMs: t },
      { type: 'favorite', occurredMs: t + 20 * MIN },
    ]);
    expect(score(m)).toBeCloseTo(2 * 2 ** (10 / 30), 12);
  });

  it('joins a late event stamped before the visit start if within the gap, without hijacking the open visit otherwise', () => {
    const m = run([
      { type: 'click', occurredMs: L + 10 * MIN },
      { type: 'like', occurredMs: L + 5 * MIN },
    ]);
    expect(score(m)).toBeCloseTo(1.5 * 2 ** ((10 * MIN) / (30 * DAY)), 12); // counted at the click, the visit's start
    const late = run([
      { type: 'click', occurredMs: L + 60 * MIN },
      { type: 'like', occurredMs: L },
      { type: 'like', occurredMs: L + 61 * MIN },
    ]);
    // the stale like opens a one-visit of its own at L (weight 1.5); the fresh like still joins the click's visit
    expect(late.visits.get('product:p-1')?.like).toBe(1);
    expect(score(late)).toBeCloseTo(1.5 + 1.5 * 2 ** ((60 * MIN) / (30 * DAY)), 12);
  });

  it('gives a visit the union of its events’ tags; a tag that joins late gets the full current weight', () => {
    const m = run([
      { type: 'click', tags: ['category:dress'] },
      { type: 'like', tags: ['brand:acme'] },
      { type: 'share', tags: ['category:dress'] },
    ]);
    expect(score(m, 'category:dress')).toBe(3.5);
    expect(score(m, 'brand:acme')).toBe(3.5);
    expect(score(m)).toBe(3.5);
  });
});

describe('follows and purchases', () => {
  it('weighs follow 3 and purchase 4 on their own', () => {
    expect(score(run([{ type: 'follow', tags: ['category:dress'] }]), 'category:dress')).toBe(3);
    expect(score(run([{ type: 'purchase' }]))).toBe(4);
  });

  it('adds nothing for a follow of a target already followed', () => {
    expect(score(run([{ type: 'follow' }, { type: 'follow', occurredMs: L + DAY }]))).toBe(3);
  });

  it('unfollow removes exactly what the follow added, on its tags, at its time; a re-follow counts anew', () => {
    const m = run([
      { type: 'click', tags: ['category:dress'] },
      { type: 'follow', tags: ['category:dress', 'brand:acme'], occurredMs: L + DAY },
      { type: 'unfollow', occurredMs: L + 2 * DAY },
    ]);
    expect(score(m, 'category:dress')).toBeCloseTo(1, 12);
    expect(m.interests.has('brand:acme')).toBe(false);
    expect(score(m)).toBeCloseTo(1, 12);
    applyEvent(m, { type: 'follow', target: product, tags: [], occurredMs: L + 3 * DAY }, params);
    expect(score(m)).toBeCloseTo(1 + 3 * 2 ** (3 / 30), 12);
  });

  it('ignores an unfollow of a target not followed', () => {
    expect(score(run([{ type: 'click' }, { type: 'unfollow' }]))).toBe(1);
  });
});

describe('value', () => {
  it('is 10·tanh(score/10)', () => {
    expect(tagValue(3.5)).toBeCloseTo(10 * Math.tanh(0.35), 12);
  });
});

// ---- properties -------------------------------------------------------------------------------

const targets = [product, { type: 'shop' as const, id: 's-1' }, { type: 'content' as const, id: 'c-1' }];
const eventArb: fc.Arbitrary<ScoringEvent> = fc.record({
  type: fc.constantFrom(...EVENT_TYPES),
  target: fc.constantFrom(...targets),
  tags: fc.subarray(['category:dress', 'brand:acme', 'style:casual']),
  occurredMs: fc.integer({ min: L, max: L + 3 * DAY }),
  dwellMs: fc.integer({ min: 0, max: 120_000 }),
});
const streamArb = fc.array(eventArb, { maxLength: 60 }).map((es) => es.sort((a, b) => a.occurredMs - b.occurredMs));

function replay(events: ScoringEvent[], m = emptyModel()): PersonModel {
  for (const e of events) applyEvent(m, e, params);
  return m;
}
function close(a: Map<string, number>, b: Map<string, number>): boolean {
  const tags = new Set([...a.keys(), ...b.keys()]);
  for (const tag of tags) {
    const x = a.get(tag) ?? 0;
    const y = b.get(tag) ?? 0;
    if (Math.abs(x - y) > 1e-9 * Math.max(1, Math.abs(x), Math.abs(y))) return false;
  }
  return true;
}
/** The model as it would be stored between two batches and read back. */
function roundTrip(m: PersonModel): PersonModel {
  const json = JSON.parse(JSON.stringify({ i: [...m.interests], v: [...m.visits], f: [...m.follows] }));
  return { interests: new Map(json.i), visits: new Map(json.v), follows: new Map(json.f) };
}

describe('properties', () => {
  it('scores never depend on how events are batched', () => {
    fc.assert(
      fc.property(streamArb, fc.array(fc.integer({ min: 1, max: 10 }), { minLength: 1 }), (events, sizes) => {
        let m = emptyModel();
        let i = 0;
        for (let b = 0; i < events.length; b++) {
          const size = sizes[b % sizes.length]!;
          m = roundTrip(replay(events.slice(i, i + size), m));
          i += size;
        }
        return close(m.interests, replay(events).interests);
      }),
    );
  });

  it('a follow and its unfollow net to zero wherever they fall in the stream', () => {
    const other = { type: 'creator' as const, id: 'cr-9' };
    fc.assert(
      fc.property(
        streamArb,
        fc.nat(),
        fc.nat(),
        fc.subarray(['category:dress', 'brand:acme', 'topic:new']),
        (events, i, j, tags) => {
          const [a, b] = [i % (events.length + 1), j % (events.length + 1)].sort((x, y) => x - y) as [number, number];
          const withFollow = [
            ...events.slice(0, a),
            { type: 'follow' as const, target: other, tags, occurredMs: L + DAY },
            ...events.slice(a, b),
            { type: 'unfollow' as const, target: other, tags: [], occurredMs: L + 2 * DAY },
            ...events.slice(b),
          ];
          return close(replay(withFollow).interests, replay(events).interests);
        },
      ),
    );
  });

  it('a merge of two people’s models equals the sum of their interests', () => {
    fc.assert(
      fc.property(streamArb, streamArb, (a, b) => {
        const anon = replay(a);
        const user = replay(b);
        const sum = new Map(user.interests);
        for (const [tag, v] of anon.interests) sum.set(tag, (sum.get(tag) ?? 0) + v);
        mergeModels(user, anon, params);
        return close(user.interests, sum);
      }),
    );
  });

  it('the stored score of every tag is the sum of its visits’ current weights at their start', () => {
    // visits only, one target, no out-of-order: recompute from the final visit list by hand
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            type: fc.constantFrom('click', 'dwell', 'like', 'share' as const),
            gap: fc.integer({ min: 0, max: 40 * MIN }),
            dwellMs: fc.integer({ min: 0, max: 70_000 }),
          }),
          { maxLength: 40 },
        ),
        (steps) => {
          let t = L;
          const events: ScoringEvent[] = steps.map((s) => ({
            type: s.type,
            target: product,
            tags: [],
            occurredMs: (t += s.gap),
            dwellMs: s.dwellMs,
          }));
          const visits: {
            start: number;
            last: number;
            like: number;
            share: number;
            comment: number;
            favorite: number;
            dwellMs: number | undefined;
          }[] = [];
          for (const e of events) {
            const open = visits[visits.length - 1];
            if (e.type !== 'click' && open && e.occurredMs - open.last < 30 * MIN) {
              open.last = e.occurredMs;
              if (e.type === 'dwell') open.dwellMs = (open.dwellMs ?? 0) + e.dwellMs!;
              else open[e.type as 'like' | 'share'] += 1;
            } else {
              visits.push({
                start: e.occurredMs,
                last: e.occurredMs,
                like: e.type === 'like' ? 1 : 0,
                share: e.type === 'share' ? 1 : 0,
                comment: 0,
                favorite: 0,
                dwellMs: e.type === 'dwell' ? e.dwellMs : undefined,
              });
            }
          }
          const want = visits.reduce((s, v) => s + visitWeight(v) * 2 ** ((v.start - L) / (30 * DAY)), 0);
          const got = replay(events).interests.get('product:p-1') ?? 0;
          return Math.abs(got - want) <= 1e-9 * Math.max(1, want);
        },
      ),
    );
  });
});
