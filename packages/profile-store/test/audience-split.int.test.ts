import { createPool, type Pool } from '@pstream/platform';
import { createSandbox, type Sandbox } from '@pstream/testkit';
import { createAudienceStore, MIN_PART, type FactLeaf } from '../src/audiences';
import { migrate } from '../src/migrate';

const NOW = Date.parse('2026-06-01T12:00:00Z');
const N = 3 * MIN_PART + 500; // people; the checks below ask about them and about as many absent keys
const CITIES = ['Hangzhou', 'Beijing', 'Shanghai'];
const city = (i: number) => CITIES[i % 3]!;
const stage = (i: number) => (i % 4 === 0 ? 'active' : 'new');
const follows = (i: number) => i % 5 === 0;
const clicks = (i: number) => i % 7; // clicks of the last days (each a day of its own, 0–6 days ago)

/** A pool whose `query` calls are counted (how many statements a check was split into). */
function counted(pool: Pool): { pool: Pool; calls: () => number } {
  let n = 0;
  const wrapped = new Proxy(pool, {
    get(target, prop, receiver) {
      if (prop !== 'query') return Reflect.get(target, prop, receiver) as unknown;
      return (...args: unknown[]) => {
        n++;
        return (target.query as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { pool: wrapped, calls: () => n };
}

describe('a per-person check split into statements at once (createAudienceStore parallel)', () => {
  let box: Sandbox;
  let pool: Pool;

  beforeAll(async () => {
    box = await createSandbox(1);
    pool = createPool(process.env.DATABASE_URL!, box.env.PG_SCHEMA!, `test-split-${box.id}`, 4);
    await migrate(pool, box.env.PG_SCHEMA!);
    const at = new Date(NOW).toISOString();
    await pool.query(
      `INSERT INTO people (profile_key, first_seen_at, last_active_at, stage, stage_since, stage_evaluated_at, traits)
       SELECT 'p' || i, $2, $2, CASE WHEN i % 4 = 0 THEN 'active' ELSE 'new' END, $2, $2,
              jsonb_build_object('city', (ARRAY['${CITIES.join("','")}'])[1 + i % 3])
       FROM generate_series(0, $1::int - 1) i`,
      [N, at],
    );
    await pool.query(
      `INSERT INTO follows (profile_key, target_type, target_id, following, since, changed_at)
       SELECT 'p' || i, 'shop', 's-1', true, $2, $2 FROM generate_series(0, $1::int - 1) i WHERE i % 5 = 0`,
      [N, at],
    );
    await pool.query(
      `INSERT INTO activity (profile_key, day, type, target_type, target_id, tags, n)
       SELECT 'p' || i, ($2::date - d), 'click', 'product', 'x', 'category:tea', 1
       FROM generate_series(0, $1::int - 1) i, generate_series(0, 6) d WHERE d < i % 7`,
      [N, new Date(NOW).toISOString().slice(0, 10)],
    );
    await pool.query('ANALYZE');
  }, 120_000);

  afterAll(async () => {
    await pool?.end();
    await box?.cleanup();
  }, 60_000);

  const checks: { leaf: FactLeaf; negated: boolean }[] = [
    { leaf: { trait: { name: 'city', op: 'eq', value: 'Beijing' } }, negated: false },
    { leaf: { stage: { in: ['new'] } }, negated: false },
    { leaf: { follows: { type: 'shop', id: 's-1' } }, negated: true },
    { leaf: { did: { type: 'click', tag: 'category:tea', atLeast: 3, inLastDays: 30 } }, negated: false },
  ];
  // people in a shuffled order, with keys that are no profile among them
  const within = Array.from({ length: N }, (_, i) => [`p${(i * 7919) % N}`, `absent-${i}`]).flat();
  const expected = Array.from({ length: N }, (_, i) => i)
    .filter((i) => city(i) === 'Beijing' && stage(i) === 'new' && !follows(i) && clicks(i) >= 3)
    .map((i) => `p${i}`)
    .sort();

  it('answers as one statement does, in key order, with one statement per part', async () => {
    const one = counted(pool);
    const split = counted(pool);
    const single = createAudienceStore(one.pool);
    const parts = createAudienceStore(split.pool, { parallel: 3 });
    expect(expected.length).toBeGreaterThan(100);

    expect(await single.holdingAll(checks, NOW, within)).toEqual(expected);
    expect(one.calls()).toBe(1);
    expect(await parts.holdingAll(checks, NOW, within)).toEqual(expected);
    expect(split.calls()).toBe(3);

    const did = checks[3]!.leaf;
    const didHolders = Array.from({ length: N }, (_, i) => i)
      .filter((i) => clicks(i) >= 3)
      .map((i) => `p${i}`)
      .sort();
    expect(await single.leafKeys(did, NOW, within)).toEqual(didHolders);
    expect(await parts.leafKeys(did, NOW, within)).toEqual(didHolders);
    expect(split.calls()).toBe(6);
  });

  it('keeps one statement below MIN_PART people a part', async () => {
    const split = counted(pool);
    const parts = createAudienceStore(split.pool, { parallel: 4 });
    const few = within.slice(0, 2 * MIN_PART - 1); // room for one part only
    const want = await createAudienceStore(pool).holdingAll(checks, NOW, few);
    expect(await parts.holdingAll(checks, NOW, few)).toEqual(want);
    expect(split.calls()).toBe(1);
    expect(await parts.holdingAll(checks, NOW, [])).toEqual([]);
    expect(split.calls()).toBe(1);
  });
});
