import { decayedScore, tagValue } from '@pstream/scoring';
import fc from 'fast-check';
import { cosine, dropsBelowAt, featureVector, ruleSchema, storedThreshold, RULE_LIMITS, type Rule } from '../src';
import { TEST_DECAY } from '@pstream/scoring/testing';

const paths = (input: unknown) => {
  const r = ruleSchema.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('the §5.4 rule schema', () => {
  it('accepts every leaf and nesting of the docs/api.md §5.4 example', () => {
    const rule = {
      all: [
        { interest: { tag: 'category:dress', minValue: 5 } },
        { stage: { in: ['active', 'loyal'] } },
        { tier: { value: ['high'] } },
        { tier: { social: ['active'] } },
        { trait: { name: 'city', op: 'eq', value: 'Hangzhou' } },
        { trait: { name: 'birthYear', op: 'gte', value: 1990 } },
        { trait: { name: 'gender', op: 'exists' } },
        { follows: { type: 'shop', id: 's-1' } },
        { did: { type: 'purchase', tag: 'category:dress', atLeast: 2, inLastDays: 30 } },
        { did: { type: 'click', target: { type: 'product', id: 'p-1' }, atLeast: 1, inLastDays: 7 } },
        {
          not: {
            any: [
              { stage: { in: ['churned'] } },
              { trait: { name: 'city', op: 'in', value: ['Beijing', 'Shanghai'] } },
            ],
          },
        },
      ],
    };
    expect(paths(rule)).toEqual([]);
  });

  it('names the exact path of a bad leaf deep in the tree', () => {
    expect(
      paths({ all: [{ stage: { in: ['active'] } }, { not: { interest: { tag: 'category:dress', minValue: 11 } } }] }),
    ).toEqual(['all.1.not.interest.minValue: Too big: expected number to be <=10']);
    expect(paths({ any: [{ did: { type: 'purchase', atLeast: 1, inLastDays: 400 } }] })[0]).toMatch(
      /^any\.0\.did\.inLastDays:/,
    );
    expect(paths({ all: [{ trait: { name: 'age', op: 'gt', value: 'old' } }] })).toEqual([
      'all.0.trait.value: gt takes a number',
    ]);
    expect(paths({ all: [{ stage: { in: ['active'] }, tier: { value: ['high'] } }] })[0]).toMatch(
      /^all\.0: a rule node has exactly one of/,
    );
    expect(paths({ all: [{ colour: 'red' }] })[0]).toMatch(/^all\.0: Unrecognized key/);
    expect(paths({ all: [] })[0]).toMatch(/^all:/);
  });

  it('takes predicted.gender / predicted.ageBand with minConfidence, and refuses what a predicted class cannot take', () => {
    expect(paths({ trait: { name: 'predicted.gender', op: 'eq', value: 'f', minConfidence: 0.8 } })).toEqual([]);
    expect(paths({ trait: { name: 'predicted.ageBand', op: 'in', value: ['18-24', '25-29'] } })).toEqual([]);
    expect(paths({ trait: { name: 'predicted.city', op: 'eq', value: 'x' } })).toEqual([
      'trait.name: a predicted trait is one of predicted.gender, predicted.ageBand',
    ]);
    expect(paths({ trait: { name: 'predicted.gender', op: 'gt', value: 1 } })).toEqual([
      'trait.op: a predicted trait takes eq, ne, in, exists',
    ]);
    expect(paths({ trait: { name: 'city', op: 'exists', minConfidence: 0.5 } })).toEqual([
      'trait.minConfidence: minConfidence applies to predicted.* traits only',
    ]);
    expect(paths({ trait: { name: 'predicted.gender', op: 'eq', value: 'f', minConfidence: 1.5 } })).toHaveLength(1);
  });

  it('refuses rules deeper or larger than the limits', () => {
    let deep: Rule = { stage: { in: ['new'] } };
    for (let i = 0; i < RULE_LIMITS.maxDepth; i++) deep = { not: deep };
    expect(paths(deep)).toEqual([`: rule is ${RULE_LIMITS.maxDepth + 1} levels deep; at most ${RULE_LIMITS.maxDepth}`]);
    const wide = {
      all: Array.from({ length: 3 }, () => ({ any: Array.from({ length: 30 }, () => ({ stage: { in: ['new'] } })) })),
    };
    expect(paths(wide)[0]).toMatch(/rule has 94 nodes; at most 64/);
  });
});

describe('interest thresholds under forward decay', () => {
  const decay = TEST_DECAY;
  it('"value ≥ v now" is exactly "stored ≥ a bound of now", and the bound gives the instant of the exit', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.01, max: 1e6, noNaN: true }),
        fc.double({ min: 0.1, max: 9.9, noNaN: true }),
        fc.integer({ min: 0, max: 3 * 365 }),
        (stored, v, day) => {
          const now = decay.landmarkMs + day * 86_400_000;
          const value = tagValue(decayedScore(stored, now, decay), 10);
          const bound = storedThreshold(v, now, decay, 10);
          // away from the boundary itself (floating point), both sides agree
          if (Math.abs(value - v) > 1e-9) expect(stored >= bound).toBe(value >= v);
          const exit = dropsBelowAt(stored, v, decay, 10);
          if (Number.isFinite(exit)) expect(tagValue(decayedScore(stored, exit, decay), 10)).toBeCloseTo(v, 9);
        },
      ),
    );
  });
  it('a value of 10 or more is never reached', () => {
    expect(storedThreshold(10, Date.now(), decay, 10)).toBe(Infinity);
  });
});

describe('the §5.3 vector and cosine', () => {
  const decay = TEST_DECAY;
  it('has one component per tag value plus $spend and $social, and cosine is the plain formula', () => {
    const now = decay.landmarkMs;
    const v = featureVector(
      new Map([
        ['category:dress', 5],
        ['brand:acme', 1],
      ]),
      { spend: 500, social: 2 },
      now,
      decay,
      10,
    );
    expect(v.get('category:dress')).toBeCloseTo(10 * Math.tanh(0.5), 12);
    expect(v.get('$spend')).toBeCloseTo(10 * Math.tanh(0.5), 12);
    expect(v.get('$social')).toBeCloseTo(10 * Math.tanh(0.4), 12);
    const a = new Map([
      ['x', 3],
      ['y', 4],
    ]);
    const b = new Map([
      ['x', 4],
      ['z', 3],
    ]);
    expect(cosine(a, b)).toBeCloseTo(12 / 25, 12);
    expect(cosine(a, a)).toBeCloseTo(1, 12);
    expect(cosine(a, new Map())).toBe(0);
  });
});
