import { isReactivation, stageAt } from '../src';

const DAY = 86_400_000;
const now = Date.parse('2026-11-20T00:00:00Z');
const ago = (days: number) => now - days * DAY;

describe('stageAt (SPEC §4.3, first rule that holds)', () => {
  it.each([
    ['churned after 90 idle days', { lastActiveAtMs: ago(90) - 1, firstPurchaseAtMs: ago(100), purchaseTimesMs: [] }, 'churned'],
    ['at risk after 30 idle days', { lastActiveAtMs: ago(30) - 1, firstPurchaseAtMs: null, purchaseTimesMs: [] }, 'at_risk'],
    ['still in play at exactly 30 days', { lastActiveAtMs: ago(30), firstPurchaseAtMs: null, purchaseTimesMs: [] }, 'potential'],
    ['loyal with 3 purchases in 90 days', { lastActiveAtMs: ago(1), firstPurchaseAtMs: ago(200), purchaseTimesMs: [ago(80), ago(40), ago(1)] }, 'loyal'],
    ['new within 30 days of a first purchase', { lastActiveAtMs: ago(1), firstPurchaseAtMs: ago(29), purchaseTimesMs: [ago(29)] }, 'new'],
    ['active after that', { lastActiveAtMs: ago(1), firstPurchaseAtMs: ago(31), purchaseTimesMs: [ago(31)] }, 'active'],
    ['potential with activity and no purchase', { lastActiveAtMs: ago(1), firstPurchaseAtMs: null, purchaseTimesMs: [] }, 'potential'],
  ])('%s', (_name, facts, stage) => expect(stageAt(facts, now)).toBe(stage));
});

describe('isReactivation', () => {
  it('names a return from at_risk or churned', () => {
    expect(isReactivation('at_risk', 'active')).toBe(true);
    expect(isReactivation('churned', 'loyal')).toBe(true);
    expect(isReactivation('churned', 'at_risk')).toBe(false);
    expect(isReactivation('new', 'active')).toBe(false);
  });
});
