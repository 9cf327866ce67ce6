import { ageBand, createPopulation, givenLabel, inHoldout, seededRandom } from '../src';

const NOW = Date.UTC(2026, 5, 1);
const CATEGORIES = ['dress', 'skirt', 'makeup', 'bags', 'shoes', 'watches', 'tools', 'games', 'sports', 'phones'];

/** People whose clicks lean (`lean` of them) to the first half of the categories when f, the second when m. */
function population(n: number, lean: number, seed: number) {
  const random = seededRandom(seed);
  const pop = createPopulation(NOW);
  const truth = new Map<string, string>();
  for (let i = 0; i < n; i++) {
    const gender = random() < 0.6 ? 'f' : 'm';
    const v = new Map<string, number>();
    for (let c = 0; c < 8; c++) {
      const leaning = random() < lean;
      const half = leaning === (gender === 'f') ? 0 : 5;
      const tag = `category:${CATEGORIES[half + Math.floor(random() * 5)]}`;
      v.set(tag, Math.min(10, (v.get(tag) ?? 0) + 2 + random() * 3));
    }
    const key = `p-${i}`;
    truth.set(key, gender);
    pop.add(key, i % 5 === 0 ? {} : { gender: gender.toUpperCase() }, v);
  }
  return { pop, truth };
}

describe('softmax regression on §5.3 vectors', () => {
  test('where clicks carry gender, the holdout accuracy is at least 0.9 and the predictions for people who gave none are right', async () => {
    const { pop, truth } = population(4000, 0.85, 7);
    const fit = (await pop.fit('gender', { holdoutFraction: 0.2 }))!;
    expect(fit.model.classes).toEqual(['f', 'm']);
    expect(fit.holdout.size).toBeGreaterThan(500);
    expect(fit.holdout.accuracy).toBeGreaterThanOrEqual(0.9);
    expect(fit.holdout.baseline).toBeGreaterThan(0.5);
    expect(fit.holdout.baseline).toBeLessThan(0.7);
    const predicted = [...pop.predictions('gender', fit.model)];
    expect(predicted).toHaveLength(800);
    const right = predicted.filter((p) => truth.get(p.key) === p.value).length;
    expect(right / predicted.length).toBeGreaterThanOrEqual(0.9);
  });

  test('where clicks carry nothing, accuracy stays at the baseline and confidence near the base rate', async () => {
    const { pop } = population(4000, 0.5, 8);
    const fit = (await pop.fit('gender', { holdoutFraction: 0.2 }))!;
    expect(Math.abs(fit.holdout.accuracy - fit.holdout.baseline)).toBeLessThan(0.05);
    const confidences = [...pop.predictions('gender', fit.model)].map((p) => p.confidence);
    const mean = confidences.reduce((a, b) => a + b, 0) / confidences.length;
    // about the share of the most common class (0.6): the model says it knows no more than the base rate
    expect(mean).toBeLessThan(fit.holdout.baseline + 0.05);
  });

  test('a trait with one class is not trained', async () => {
    const pop = createPopulation(NOW);
    pop.add('a', { gender: 'f' }, [['x', 1]]);
    pop.add('b', { gender: 'f' }, [['y', 1]]);
    expect(await pop.fit('gender', { holdoutFraction: 0.5 })).toBeUndefined();
  });
});

describe('labels', () => {
  test('gender is trimmed and lower-cased; age bands come from birthYear, else age', () => {
    expect(givenLabel('gender', { gender: ' F ' }, NOW)).toBe('f');
    expect(givenLabel('gender', { gender: '' }, NOW)).toBeUndefined();
    expect(givenLabel('ageBand', { birthYear: 2000 }, NOW)).toBe('25-29');
    expect(givenLabel('ageBand', { birthYear: '1990', age: 12 }, NOW)).toBe('35-39');
    expect(givenLabel('ageBand', { age: 17 }, NOW)).toBe('<18');
    expect(givenLabel('ageBand', { age: 'old' }, NOW)).toBeUndefined();
    expect(ageBand(50)).toBe('50+');
  });

  test('the holdout split is stable and close to its fraction', () => {
    const keys = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);
    const held = keys.filter((k) => inHoldout(k, 0.2)).length;
    expect(held).toBeGreaterThan(1800);
    expect(held).toBeLessThan(2200);
    expect(keys.filter((k) => inHoldout(k, 0.2))).toEqual(keys.filter((k) => inHoldout(k, 0.2)));
  });
});
