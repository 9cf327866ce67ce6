import { dwellFactor, explicitTags } from '../src';

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

describe('explicitTags', () => {
  it('keeps each tag once and leaves the implicit target tag to the model', () => {
    expect(explicitTags(['category:dress', 'product:p-1', 'category:dress'], { type: 'product', id: 'p-1' })).toEqual([
      'category:dress',
    ]);
  });
});
