import { cosine, cosineUpperBound, rankBounded, rankSimilar, type Vector } from '../src/similar';

/** A fixed pseudo-random sequence (the tests see the same vectors every run). */
function random(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 48271) % 2147483647;
    return x / 2147483647;
  };
}

const TAGS = ['category:a', 'category:b', 'category:c', 'category:d', 'category:e', 'category:f'];

/** Some tags (values in (-10, 10), mostly positive), and spend in (-10, 10) and social in [0, 10) — or none. */
function vectorFrom(next: () => number, facts: boolean): Vector {
  const v: Vector = new Map();
  for (const tag of TAGS) if (next() < 0.5) v.set(tag, 10 * Math.tanh((next() - 0.1) * 3));
  if (facts && next() < 0.7) v.set('$spend', 10 * Math.tanh((next() - 0.2) * 4));
  if (facts && next() < 0.7) v.set('$social', 10 * Math.tanh(next() * 4));
  return v;
}

const interestsOnly = (v: Vector): Vector => new Map([...v].filter(([k]) => !k.startsWith('$')));

describe('similar people read Postgres only for the candidates that can make the answer (docs/api.md §5.3)', () => {
  it('bounds the cosine from above whatever the spend and social, and is reached when they fit', () => {
    const next = random(7);
    let worst = Infinity; // the smallest bound − cosine seen
    for (let n = 0; n < 20_000; n++) {
      const me = vectorFrom(next, true);
      const other = vectorFrom(next, true);
      worst = Math.min(worst, cosineUpperBound(me, interestsOnly(other)) - cosine(me, other));
    }
    expect(worst).toBeGreaterThanOrEqual(-1e-12);
    // tags alone equal to mine, no spend or social on either side: the bound is the cosine, 1
    const me: Vector = new Map([
      ['category:a', 3],
      ['category:b', 4],
    ]);
    expect(cosineUpperBound(me, me)).toBeCloseTo(1, 12);
    expect(cosineUpperBound(new Map(), me)).toBe(0);
  });

  it('gives the answer of ranking every candidate, asking for fewer', async () => {
    const next = random(11);
    let asked = 0;
    let everyone = 0;
    for (let n = 0; n < 300; n++) {
      const me = vectorFrom(next, true);
      const full = new Map<string, Vector>();
      const allowed = new Set<string>();
      const size = 1 + Math.floor(next() * 120);
      for (let i = 0; i < size; i++) {
        const id = `p${i}`;
        // a few exact copies of each other, so equal similarities are ordered by id
        full.set(id, i % 17 === 5 ? full.get('p0')! : vectorFrom(next, true));
        if (next() < 0.9) allowed.add(id);
      }
      const limit = [1, 10, 100][n % 3]!;
      const batch = [1, 8, 64][Math.floor(n / 3) % 3]!;
      const expected = rankSimilar(me, new Map([...full].filter(([id]) => allowed.has(id))), limit);
      const got = await rankBounded(
        me,
        new Map([...full].map(([id, v]) => [id, interestsOnly(v)])),
        limit,
        batch,
        async (ids) => {
          asked += ids.length;
          return new Map(ids.map((id) => [id, allowed.has(id) ? full.get(id) : undefined]));
        },
      );
      expect(got).toEqual(expected);
      everyone += size;
    }
    expect(asked).toBeLessThan(everyone);
  });

  it('asks once for the first batch when it settles the answer, and never twice for anyone', async () => {
    const me: Vector = new Map([
      ['category:a', 9],
      ['$spend', 1],
    ]);
    const full = new Map<string, Vector>();
    for (let i = 0; i < 50; i++)
      full.set(
        `p${String(i).padStart(2, '0')}`,
        new Map([
          ['category:a', 9 - i * 0.1],
          ['category:f', i * 0.5],
          ['$spend', 1],
        ]),
      );
    const calls: string[][] = [];
    const got = await rankBounded(
      me,
      new Map([...full].map(([id, v]) => [id, interestsOnly(v)])),
      3,
      8,
      async (ids) => {
        calls.push(ids);
        return new Map(ids.map((id) => [id, full.get(id)]));
      },
    );
    expect(got.map((s) => s.id)).toEqual(['p00', 'p01', 'p02']);
    expect(calls.map((c) => c.length)).toEqual([8]);
    expect(calls[0]).toEqual(['p00', 'p01', 'p02', 'p03', 'p04', 'p05', 'p06', 'p07']);
  });
});
