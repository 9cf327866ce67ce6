import { EVENT_TYPES } from '@pstream/events';
import fc from 'fast-check';
import { addEvents, emptyState, keyedEvent, replay, type ScoringEvent, type TimelineParams } from '@pstream/scoring';
import { createHash } from 'node:crypto';
import {
  decodeState,
  dedupeDigests,
  digestHex,
  digestOf,
  encodeJsonState,
  encodePacked,
  encodeState,
  encodeTail,
  loggedDiff,
  memberDigest,
  scoreDiff,
  storedScores,
  storedScoresAtLeast,
  topStoredScores,
  noteSeen,
  seenSpan,
  trimSeen,
  trimSeenSpanned,
  type Seen,
} from '../src/state';
import { testTimelineParams } from '@pstream/scoring/testing';

const L = Date.parse('2026-01-01T00:00:00Z');
const MIN = 60_000;
const HOUR = 60 * MIN;
const params: TimelineParams = testTimelineParams({ maxOpenVisits: 3, latenessMs: 48 * HOUR });
const decay = params.decay;
const targets = ['p-1', 'p-2', 'p-3', 'ünï-4'].map((id) => ({ type: 'product' as const, id }));

/** `topStoredScores`' answer worked out from `storedScores`: sorted as Redis reads a sorted set highest first. */
function expectTopAsSorted(raw: Buffer): void {
  const all = [...storedScores(raw)!].sort((a, b) =>
    a[1] !== b[1] ? b[1] - a[1] : Buffer.compare(Buffer.from(b[0]), Buffer.from(a[0])),
  );
  const dimensions = [undefined, ...new Set(all.map(([tag]) => tag.split(':')[0]!))];
  for (const limit of [0, 1, 3, 20, 64, 65, Number.MAX_SAFE_INTEGER])
    for (const dimension of dimensions) {
      const keep = dimension === undefined ? undefined : (tag: string) => tag.split(':')[0] === dimension;
      const top: [string, number][] = [];
      expect(topStoredScores(raw, limit, keep, (tag, score) => top.push([tag, score]))).toBe(true);
      expect(top).toEqual(all.filter(([tag]) => !keep || keep(tag)).slice(0, limit));
      top.forEach(([tag, score]) => expect(Object.is(score, storedScores(raw)!.get(tag))).toBe(true));
    }
  // the follower mix's strong tags: exactly the stored scores at or past the threshold, at every score and between
  const scores = all.map(([, score]) => score);
  for (const min of [-Infinity, Infinity, ...scores, ...scores.map((x) => x + Math.abs(x) * 1e-12 + 1e-300)]) {
    const strong: string[] = [];
    expect(storedScoresAtLeast(raw, min, (tag) => strong.push(tag))).toBe(true);
    expect(strong.sort()).toEqual(
      all
        .filter(([, score]) => score >= min)
        .map(([tag]) => tag)
        .sort(),
    );
  }
}

const eventArb: fc.Arbitrary<ScoringEvent> = fc.record({
  type: fc.constantFrom(...EVENT_TYPES),
  target: fc.constantFrom(...targets),
  tags: fc.subarray(['category:dress', 'brand:acme', 'style:casual', 'brand:日本']),
  // before and after the landmark, whole and fractional dwell
  occurredMs: fc.integer({ min: -2000, max: 8000 }).map((x) => L + x * 5 * MIN),
  dwellMs: fc.oneof(fc.integer({ min: 0, max: 90_000 }), fc.double({ min: 0, max: 1e5, noNaN: true })),
});

describe('packed person state (state.ts)', () => {
  it('round-trips every part of any state and dedupe record exactly', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(eventArb, { maxLength: 12 }), { maxLength: 8 }),
        fc.array(fc.tuple(fc.bigInt({ min: 0n, max: 2n ** 52n - 1n }), fc.integer({ min: 0, max: 2e9 })), {
          maxLength: 40,
        }),
        // how far an older version's members may reach: not said (as an older version wrote), none, or a second
        fc.oneof(
          fc.constant(undefined),
          fc.constant(-Infinity),
          fc.integer({ min: 0, max: 2e9 }).map((x) => x * 1000),
        ),
        (batches, records, legacyUntil) => {
          const s = emptyState();
          for (const batch of batches) addEvents(s, batch.map(keyedEvent), params);
          const seen: Seen = new Map(records.map(([d, sec]) => [Number(d), sec * 1000]));
          const raw = encodeState('v1x', s, seen, { legacyUntil });
          const back = decodeState(raw, decay);
          expect(back.version).toBe('v1x');
          expect(back.state).toEqual(s);
          expect(back.seen).toEqual(seen);
          // not said: every record may be an older version's
          expect(back.legacyUntil).toBe(legacyUntil ?? (seen.size > 0 ? Math.max(...seen.values()) : -Infinity));
          expect(dedupeDigests(raw)).toEqual(new Set([...seen.keys()].map(digestHex)));
        },
      ),
      { numRuns: 300 },
    );
  });

  it.each([
    ['without its scores (the form before)', false],
    ['with its current scores', true],
  ])('reads a state %s with tails appended as the state the writer held, byte for byte', (_, withScores) => {
    fc.assert(
      fc.property(
        fc.array(
          fc.array(
            fc.record({
              event: eventArb,
              digest: fc.bigInt({ min: 0n, max: 2n ** 52n - 1n }),
              // receive seconds spread over several dedupe windows, so trims happen
              sec: fc.integer({ min: 1_700_000_000, max: 1_700_000_000 + 10 * 86_400 }),
            }),
            { minLength: 1, maxLength: 6 },
          ),
          { maxLength: 10 },
        ),
        fc.nat(),
        fc.oneof(fc.constant(-Infinity), fc.integer({ min: 1_700_000_000, max: 1_700_000_000 + 10 * 86_400 })),
        (batches, split, legacySec) => {
          const s = emptyState();
          const seen: Seen = new Map();
          const windowMs = 3 * 86_400_000;
          const cut = batches.length === 0 ? 0 : split % (batches.length + 1);
          let raw: Buffer = Buffer.alloc(0);
          let packed: ReturnType<typeof encodePacked>['packed'] | undefined = undefined;
          // older members may reach this far; a tail's trim past it leaves none
          let legacyUntil = legacySec * 1000;
          for (const [i, batch] of batches.entries()) {
            if (i === cut)
              ({ raw, packed } = encodePacked('v2', s, seen, legacyUntil, withScores ? replay(s, params) : undefined));
            // as the store takes a chunk: records, trim, events
            const added: [number, number][] = [];
            for (const { digest, sec } of batch) {
              if (seen.has(Number(digest))) continue;
              seen.set(Number(digest), sec * 1000);
              added.push([Number(digest), sec * 1000]);
            }
            const cutoff = trimSeen(seen, windowMs);
            if (packed && cutoff > legacyUntil) legacyUntil = -Infinity;
            const events = batch.map((b) => keyedEvent(b.event));
            const newest = s.newest;
            const before = replay(s, params);
            addEvents(s, events, params);
            const scores = withScores ? { before, after: replay(s, params) } : undefined;
            if (packed) raw = Buffer.concat([raw, encodeTail(packed, newest, added, cutoff, events, scores)]);
          }
          const current = replay(s, params);
          if (!packed) raw = encodeState('v2', s, seen, { scores: withScores ? current : undefined, legacyUntil });
          const back = decodeState(raw, params);
          expect(back.legacyUntil).toBe(legacyUntil);
          expect(back.version).toBe('v2');
          expect(back.state).toEqual(s);
          expect(back.seen).toEqual(seen);
          expect(encodeState('v2', back.state, back.seen)).toEqual(encodeState('v2', s, seen));
          expect(dedupeDigests(raw)).toEqual(new Set([...seen.keys()].map(digestHex)));
          expect(back.packed?.bytes).toBe(raw.length - 2);
          expect(back.packed?.scores).toBe(withScores);
          // readers read the current scores, to the bit, without replaying (or none: `:int` then)
          if (withScores) {
            expect(storedScores(raw)).toEqual(current);
            expect(back.scores).toEqual(current);
            for (const [tag, score] of current) expect(Object.is(storedScores(raw)!.get(tag), score)).toBe(true);
            // the profile read's top scores: the same as these sorted
            expectTopAsSorted(raw);
          } else {
            expect(storedScores(raw)).toBeUndefined();
            expect(topStoredScores(raw, 20, undefined, () => undefined)).toBe(false);
            expect(storedScoresAtLeast(raw, 0, () => undefined)).toBe(false);
            expect(back.scores).toBeUndefined();
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('reads the JSON form of earlier versions as the same state', () => {
    const s = emptyState();
    addEvents(
      s,
      [
        keyedEvent({ type: 'click', target: targets[0]!, tags: ['brand:acme'], occurredMs: L }),
        keyedEvent({ type: 'dwell', target: targets[0]!, tags: [], occurredMs: L + MIN, dwellMs: 1500 }),
        keyedEvent({ type: 'follow', target: targets[1]!, tags: ['style:casual'], occurredMs: L + 3 * 24 * HOUR }),
      ],
      params,
    );
    const seen: Seen = new Map([[digestOf('test|a@u-1'), 1_700_000_000_000]]);
    const json = Buffer.from(encodeJsonState('abc', s, seen));
    const back = decodeState(json, decay);
    // written before the older members were told apart: every record may be one
    expect(back).toEqual({ version: 'abc', state: s, seen, legacyUntil: 1_700_000_000_000 });
    expect(dedupeDigests(json)).toEqual(new Set([memberDigest('test|a@u-1')]));
    expect(memberDigest('test|a@u-1')).toBe(createHash('sha1').update('test|a@u-1').digest('hex').slice(0, 13));
    expect(encodeState('abc', s, seen).length).toBeLessThan(json.length * 0.7);
  });

  it('refuses a damaged state as IST_BAD_STATE', () => {
    const raw = encodeState('v', emptyState(), new Map([[1, 5000]]));
    expect(() => decodeState(raw.subarray(0, raw.length - 2), decay)).toThrow(
      expect.objectContaining({ code: 'IST_BAD_STATE' }),
    );
    const withScores = encodeState('v', emptyState(), new Map([[1, 5000]]), {
      scores: new Map([['brand:acme', 1.5]]),
    });
    expect(() => storedScores(withScores.subarray(0, withScores.length - 3))).toThrow(
      expect.objectContaining({ code: 'IST_BAD_STATE' }),
    );
    expect(() =>
      topStoredScores(withScores.subarray(0, withScores.length - 3), 20, undefined, () => undefined),
    ).toThrow(expect.objectContaining({ code: 'IST_BAD_STATE' }));
    expect(() => storedScoresAtLeast(withScores.subarray(0, withScores.length - 3), 0, () => undefined)).toThrow(
      expect.objectContaining({ code: 'IST_BAD_STATE' }),
    );
    expect(storedScores(withScores)).toEqual(new Map([['brand:acme', 1.5]]));
    expect(() => decodeState(Buffer.from('no bar'), decay)).toThrow(expect.objectContaining({ code: 'IST_BAD_STATE' }));
  });

  it('reads the top scores in Redis order: equal scores by tag as UTF-8 bytes, descending', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            // surrogate pairs against U+E000-FFFF: UTF-16 order and UTF-8 order differ there
            fc.stringMatching(/^(a|b|:|é|\uE000|\uFFFD|😀|𝄞){0,4}$/),
            fc.constantFrom(0, -0, 1, 1.5, 2, -3, Infinity),
          ),
          { maxLength: 150 },
        ),
        (pairs) => {
          const raw = encodeState('v', emptyState(), new Map(), { scores: new Map(pairs) });
          expectTopAsSorted(raw);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('trimSeenSpanned', () => {
  it('forgets the same records and returns the same bound as trimSeen, chunk after chunk', () => {
    fc.assert(
      fc.property(
        // chunks of (digest, receive second), seconds mostly rising and sometimes behind
        fc.array(
          fc.array(fc.tuple(fc.integer({ min: 0, max: 400 }), fc.integer({ min: 0, max: 60 })), { maxLength: 12 }),
          {
            maxLength: 25,
          },
        ),
        fc.integer({ min: 0, max: 40 }),
        (chunks, windowSec) => {
          const plain: Seen = new Map();
          const spanned: Seen = new Map();
          const span = seenSpan(spanned);
          for (const [n, chunk] of chunks.entries()) {
            for (const [digest, sec] of chunk) {
              const at = (sec + n * 3) * 1000;
              if (!plain.has(digest)) plain.set(digest, at);
              if (!spanned.has(digest)) {
                spanned.set(digest, at);
                noteSeen(span, at);
              }
            }
            if (plain.size === 0) continue;
            expect(trimSeenSpanned(spanned, windowSec * 1000, span)).toBe(trimSeen(plain, windowSec * 1000));
            expect([...spanned]).toEqual([...plain]);
            expect(span.newest).toBe(seenSpan(spanned).newest);
            expect(span.oldest).toBeLessThanOrEqual(seenSpan(spanned).oldest);
          }
        },
      ),
    );
  });
});

describe('loggedDiff', () => {
  it('is scoreDiff of the scores before (after with the logged ones put back) and after, in the same order', () => {
    const tag = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h');
    const change = fc.tuple(tag, fc.option(fc.constantFrom(0.5, 1, 2.25), { nil: undefined }));
    fc.assert(
      fc.property(fc.array(fc.tuple(tag, fc.constantFrom(1, 2, 3))), fc.array(change), (start, changes) => {
        const before = new Map<string, number>(start);
        const after = new Map(before);
        const log = new Map<string, number | undefined>();
        for (const [t, inc] of changes) {
          if (!log.has(t)) log.set(t, after.get(t));
          if (inc === undefined) after.delete(t);
          else after.set(t, (after.get(t) ?? 0) + inc);
        }
        const expected = scoreDiff(before, after);
        const got = loggedDiff(after, log);
        expect(got.tags).toEqual(expected.tags);
        expect(got.scores).toEqual(expected.scores);
        expect(new Set(got.removed)).toEqual(new Set(expected.removed));
      }),
      { numRuns: 500 },
    );
  });
});
