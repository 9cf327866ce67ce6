import fc from 'fast-check';
import { decayedScore, forwardWeight, tagValue } from '../src';
import { TEST_DECAY } from '../src/testing';

const DAY = 86_400_000;
const p = TEST_DECAY;

describe('forward decay', () => {
  it('follows the seed table at 3 / 7 / 15 / 30 days (≈1 / 0.85 / 0.7 / 0.5)', () => {
    const t = Date.parse('2026-06-01T00:00:00Z');
    const at = (days: number) => decayedScore(forwardWeight(1, t, p), t + days * DAY, p);
    expect(at(0)).toBeCloseTo(1, 12);
    expect(at(3)).toBeCloseTo(0.933, 3);
    expect(at(7)).toBeCloseTo(0.851, 3);
    expect(at(15)).toBeCloseTo(0.707, 3);
    expect(at(30)).toBeCloseTo(0.5, 12);
  });

  it('equals plain exponential decay for any weight, event time and reading time', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.01, max: 100, noNaN: true }),
        fc.integer({ min: -365, max: 3650 }),
        fc.integer({ min: 0, max: 3650 }),
        (w, tDays, ageDays) => {
          const t = p.landmarkMs + tDays * DAY;
          const got = decayedScore(forwardWeight(w, t, p), t + ageDays * DAY, p);
          const want = w * 2 ** (-ageDays / 30);
          return Math.abs(got - want) <= 1e-9 * want;
        },
      ),
    );
  });
});

describe('tagValue', () => {
  it('is an S-curve onto 0..10', () => {
    expect(tagValue(0)).toBe(0);
    expect(tagValue(10)).toBeCloseTo(7.616, 3);
    expect(tagValue(1e6)).toBe(10);
  });
});
