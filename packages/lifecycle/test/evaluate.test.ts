import fc from 'fast-check';
import {
  DAY_MS,
  DEFAULT_RULES,
  evaluate,
  isReactivation,
  nextReviewAt,
  socialTierAt,
  stageAt,
  valueTierAt,
  type LifecycleFacts,
} from '../src';

const now = Date.parse('2026-11-20T00:00:00Z');
const ago = (days: number) => now - days * DAY_MS;
const facts = (f: Partial<LifecycleFacts>): LifecycleFacts => ({
  lastActiveAtMs: ago(1),
  firstPurchaseAtMs: null,
  purchases: [],
  socialTimesMs: [],
  ...f,
});
const bought = (...days: number[]) => days.map((d) => ({ atMs: ago(d), amount: 10 }));

describe('stageAt (docs/model.md §4.3, first rule that holds)', () => {
  it.each([
    ['has no stage before any event', facts({ lastActiveAtMs: null }), null],
    ['is churned 1 ms past 90 idle days', facts({ lastActiveAtMs: ago(90) - 1 }), 'churned'],
    ['is at risk at exactly 90 idle days', facts({ lastActiveAtMs: ago(90) }), 'at_risk'],
    ['is at risk 1 ms past 30 idle days', facts({ lastActiveAtMs: ago(30) - 1 }), 'at_risk'],
    ['is still in play at exactly 30 idle days', facts({ lastActiveAtMs: ago(30) }), 'potential'],
    [
      'is loyal with 3 purchases, the oldest exactly 90 days ago',
      facts({ firstPurchaseAtMs: ago(90), purchases: bought(90, 40, 1) }),
      'loyal',
    ],
    [
      'is not loyal when the third purchase is 1 ms older than 90 days',
      facts({ firstPurchaseAtMs: ago(91), purchases: [{ atMs: ago(90) - 1, amount: 1 }, ...bought(40, 1)] }),
      'active',
    ],
    [
      'is new with a first purchase exactly 30 days ago',
      facts({ firstPurchaseAtMs: ago(30), purchases: bought(30) }),
      'new',
    ],
    [
      'is active once the first purchase is 1 ms older than 30 days',
      facts({ firstPurchaseAtMs: ago(30) - 1, purchases: [{ atMs: ago(30) - 1, amount: 1 }] }),
      'active',
    ],
    ['is potential with activity and no purchase', facts({}), 'potential'],
    ['counts a future-dated event as activity now', facts({ lastActiveAtMs: now + 3_600_000 }), 'potential'],
  ])('%s', (_name, f, stage) => expect(stageAt(f, now)).toBe(stage));

  it('reads thresholds from the rules', () => {
    const rules = { ...DEFAULT_RULES, atRiskAfterDays: 7, churnedAfterDays: 14 };
    expect(stageAt(facts({ lastActiveAtMs: ago(8) }), now, rules)).toBe('at_risk');
    expect(stageAt(facts({ lastActiveAtMs: ago(15) }), now, rules)).toBe('churned');
  });
});

describe('valueTierAt', () => {
  it.each([
    ['high with 5 purchases, the oldest exactly 365 days ago', bought(365, 200, 100, 10, 1), 'high'],
    [
      'medium once the fifth is 1 ms older than 365 days',
      [{ atMs: ago(365) - 1, amount: 1 }, ...bought(200, 100, 10, 1)],
      'medium',
    ],
    [
      'high at exactly 2000 spent in 365 days',
      [
        { atMs: ago(3), amount: 1500 },
        { atMs: ago(365), amount: 500 },
      ],
      'high',
    ],
    [
      'medium just under 2000',
      [
        { atMs: ago(3), amount: 1500 },
        { atMs: ago(365), amount: 499.99 },
      ],
      'medium',
    ],
    ['low when every purchase is older than 365 days', [{ atMs: ago(365) - 1, amount: 5000 }], 'low'],
    ['low without purchases', [], 'low'],
  ])('is %s', (_name, purchases, tier) => expect(valueTierAt(facts({ purchases }), now)).toBe(tier));
});

describe('socialTierAt', () => {
  it.each([
    [
      'active with 5 interactions, the oldest exactly 30 days ago',
      [ago(30), ago(20), ago(10), ago(5), ago(1)],
      'active',
    ],
    [
      'potential when the fifth is 1 ms older than 30 days',
      [ago(30) - 1, ago(20), ago(10), ago(5), ago(1)],
      'potential',
    ],
    ['potential with one interaction exactly 90 days ago', [ago(90)], 'potential'],
    ['silent when the last one is 1 ms older than 90 days', [ago(90) - 1], 'silent'],
    ['silent without interactions', [], 'silent'],
  ])('is %s', (_name, socialTimesMs, tier) => expect(socialTierAt(facts({ socialTimesMs }), now)).toBe(tier));
});

describe('nextReviewAt', () => {
  it('is the first instant after 30 idle days for an active buyer', () => {
    const f = facts({
      lastActiveAtMs: ago(1),
      firstPurchaseAtMs: ago(100),
      purchases: [{ atMs: ago(100), amount: 10 }],
    });
    // the value tier stays medium until 365 days; the stage moves to at_risk first
    expect(nextReviewAt(f, now)).toBe(ago(1) + 30 * DAY_MS + 1);
  });

  it('is the moment a new buyer becomes active', () => {
    const f = facts({ lastActiveAtMs: ago(1), firstPurchaseAtMs: ago(10), purchases: bought(10) });
    expect(nextReviewAt(f, now)).toBe(ago(10) + 30 * DAY_MS + 1);
  });

  it('is the moment a social tier drops when that comes first', () => {
    const f = facts({ lastActiveAtMs: ago(1), socialTimesMs: [ago(29), ago(20), ago(10), ago(5), ago(1)] });
    expect(nextReviewAt(f, now)).toBe(ago(29) + 30 * DAY_MS + 1);
  });

  it('is null when nothing can change without a new event', () => {
    expect(nextReviewAt(facts({ lastActiveAtMs: ago(400) }), now)).toBeNull();
    expect(nextReviewAt(facts({ lastActiveAtMs: null }), now)).toBeNull();
  });

  it('skips candidates that change nothing (a churned person with an old purchase)', () => {
    const f = facts({ lastActiveAtMs: ago(100), firstPurchaseAtMs: ago(100), purchases: bought(100) });
    expect(nextReviewAt(f, now)).toBe(ago(100) + 365 * DAY_MS + 1); // only the value tier still moves
  });

  it('is exactly where stage or tiers first change, for any facts', () => {
    const day = fc.integer({ min: -1, max: 400 });
    fc.assert(
      fc.property(
        day,
        fc.array(fc.record({ d: day, amount: fc.integer({ min: 0, max: 1500 }) }), { maxLength: 7 }),
        fc.array(day, { maxLength: 7 }),
        (lastDays, ps, social) => {
          const purchases = ps.map((p) => ({ atMs: ago(p.d), amount: p.amount }));
          const f = facts({
            lastActiveAtMs: Math.max(ago(lastDays), ...purchases.map((p) => p.atMs), ...social.map(ago)),
            firstPurchaseAtMs: purchases.length > 0 ? Math.min(...purchases.map((p) => p.atMs)) : null,
            purchases,
            socialTimesMs: social.map(ago),
          });
          const next = nextReviewAt(f, now);
          const base = JSON.stringify(evaluate(f, now));
          // nothing changes before the review: probe every half day up to it (or 500 days)
          const end = next ?? now + 500 * DAY_MS;
          for (let t = now + DAY_MS / 2; t < end; t += DAY_MS / 2) expect(JSON.stringify(evaluate(f, t))).toBe(base);
          if (next !== null) {
            expect(JSON.stringify(evaluate(f, next - 1))).toBe(base);
            expect(JSON.stringify(evaluate(f, next))).not.toBe(base);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('isReactivation', () => {
  it('names a return from at_risk or churned', () => {
    expect(isReactivation('at_risk', 'active')).toBe(true);
    expect(isReactivation('churned', 'loyal')).toBe(true);
    expect(isReactivation('churned', 'at_risk')).toBe(false);
    expect(isReactivation('new', 'active')).toBe(false);
    expect(isReactivation(null, 'potential')).toBe(false);
  });
});
