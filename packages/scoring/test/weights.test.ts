import { dwellFactor, eventTags, singleEventWeight } from '../src';

describe('dwellFactor', () => {
  it.each([
    [undefined, 1],
    [0, 0.5],
    [9_999, 0.5],
    [10_000, 1],
    [60_000, 1],
    [60_001, 2],
  ])('f(%p) = %p', (ms, f) => expect(dwellFactor(ms)).toBe(f));
});

describe('single-event weights', () => {
  it('weighs follow 3, purchase 4, a share 1 + 2', () => {
    expect(singleEventWeight('follow', undefined)).toBe(3);
    expect(singleEventWeight('purchase', undefined)).toBe(4);
    expect(singleEventWeight('share', undefined)).toBe(3);
  });
});

describe('eventTags', () => {
  it('adds the implicit target tag once', () => {
    expect(eventTags({ tags: ['category:dress', 'product:p-1'], target: { type: 'product', id: 'p-1' } })).toEqual(['category:dress', 'product:p-1']);
  });
});
