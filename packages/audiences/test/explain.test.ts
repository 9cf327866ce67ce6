import { explainRule, ruleLeaves, type LeafOutcome } from '../src/explain';
import type { Rule } from '../src/rule';

const dress: Rule = { interest: { tag: 'category:dress', minValue: 5 } };
const loyal: Rule = { stage: { in: ['loyal'] } };
const s1: Rule = { follows: { type: 'shop', id: 's-1' } };

describe('explainRule (docs/api.md §5.4 explain)', () => {
  it('lists the leaves depth first, each tagged by where it is answered', () => {
    const rule: Rule = { all: [dress, { not: { any: [loyal, s1] } }] };
    expect(ruleLeaves(rule)).toEqual([
      { kind: 'interest', leaf: dress.interest },
      { kind: 'fact', leaf: loyal },
      { kind: 'fact', leaf: s1 },
    ]);
  });

  it('puts each outcome on its leaf and holds on every node by all / any / not', () => {
    const rule: Rule = { all: [dress, { not: { any: [loyal, s1] } }] };
    const outcomes: LeafOutcome[] = [
      { holds: true, observed: 6.2 },
      { holds: false, observed: 'new' },
      { holds: true, observed: true },
    ];
    expect(explainRule(rule, outcomes)).toEqual({
      all: [
        { interest: dress.interest, holds: true, observed: 6.2 },
        {
          not: {
            any: [
              { stage: { in: ['loyal'] }, holds: false, observed: 'new' },
              { follows: { type: 'shop', id: 's-1' }, holds: true, observed: true },
            ],
            holds: true,
          },
          holds: false,
        },
      ],
      holds: false,
    });
    expect(explainRule({ any: [loyal, s1] }, [outcomes[1]!, outcomes[1]!]).holds).toBe(false);
    expect(explainRule({ not: { not: dress } }, [outcomes[0]!]).holds).toBe(true);
  });

  it('refuses outcomes that do not fit the leaves', () => {
    expect(() => explainRule({ all: [dress, loyal] }, [{ holds: true, observed: 1 }])).toThrow(/fewer outcomes/);
    expect(() =>
      explainRule(dress, [
        { holds: true, observed: 1 },
        { holds: true, observed: 1 },
      ]),
    ).toThrow(/more outcomes/);
  });
});
