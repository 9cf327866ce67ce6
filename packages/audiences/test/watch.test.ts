import { nextChanges, readsLifecycle, timeLeaves, type HoldsUntil } from '../src/watch';
import type { Rule } from '../src/rule';

const dress = { interest: { tag: 'category:dress', minValue: 4 } };
const clicked = { did: { type: 'click' as const, atLeast: 1, inLastDays: 30 } };

describe('which leaves change by time alone, and which way (docs/api.md §5.4)', () => {
  it('gives interest and did leaves with their polarity under nested not', () => {
    const rule: Rule = {
      all: [dress, { not: { any: [clicked, { not: dress }, { trait: { name: 'city', op: 'exists' } }] } }],
    };
    expect(timeLeaves(rule).map((t) => [t.kind, t.positive])).toEqual([
      ['interest', true],
      ['did', false],
      ['interest', true],
    ]);
    expect(readsLifecycle(rule)).toBe(false);
    expect(readsLifecycle({ not: { all: [dress, { stage: { in: ['active'] } }] } })).toBe(true);
  });

  it('asks members about positive leaves and non-members about negated ones, keeping the earliest instant after now', async () => {
    const rule: Rule = { all: [dress, { not: clicked }] };
    const asked: [string, boolean, string[]][] = [];
    const holdsUntil: HoldsUntil = async (t, _now, people) => {
      asked.push([t.kind, t.positive, [...people]]);
      // a (member) holds dress until 150; b (non-member) clicked until 120; c's instant is already past
      const until = t.kind === 'interest' ? { a: 150, c: 90 } : { b: 120, c: 50 };
      return new Map(Object.entries(until).filter(([p]) => people.includes(p)));
    };
    const out = await nextChanges(rule, 100, ['a', 'b', 'c'], new Set(['a', 'c']), holdsUntil);
    expect(asked).toEqual([
      ['interest', true, ['a', 'c']],
      ['did', false, ['b']],
    ]);
    expect([...out].sort()).toEqual([
      ['a', 150],
      ['b', 120],
    ]);
  });

  it('gives no instant to a rule without time leaves', async () => {
    const holdsUntil: HoldsUntil = async () => {
      throw new Error('not asked');
    };
    expect(await nextChanges({ follows: { type: 'shop', id: 's-1' } }, 0, ['a'], new Set(['a']), holdsUntil)).toEqual(
      new Map(),
    );
  });
});
