import { createPool, type Pool } from '@pstream/platform';
import { createSandbox, type Sandbox } from '@pstream/testkit';
import { migrate } from '../src/migrate';
import { createFactsReader, FACTS_CONNECTIONS, FACTS_SESSION_SETTINGS, FACTS_SQL } from '../src/read';

const PEOPLE = 3000;

type PlanNode = { 'Node Type': string; 'Relation Name'?: string; 'Index Name'?: string; Plans?: PlanNode[] };
const nodesOf = (n: PlanNode): PlanNode[] => [n, ...(n.Plans ?? []).flatMap(nodesOf)];

/** The profile read's one statement (docs/api.md §5.1): its plan and its batching. */
describe('createFactsReader', () => {
  let box: Sandbox;
  let pool: Pool;

  beforeAll(async () => {
    box = await createSandbox(1);
    pool = createPool(process.env.DATABASE_URL!, box.env.PG_SCHEMA!, 'test-read', 4);
    await migrate(pool, box.env.PG_SCHEMA!);
    await pool.query(
      `INSERT INTO people (profile_key, stage_evaluated_at) SELECT 'p-' || g, now() FROM generate_series(1, ${PEOPLE}) g`,
    );
    // p-7 is a user with a merged anonymous id; everyone else has no identities row of their own
    await pool.query(
      `INSERT INTO identities (id, profile_key, kind) VALUES ('p-7', 'p-7', 'user'), ('anon-7', 'p-7', 'anonymous')`,
    );
    await pool.query('ANALYZE people');
  }, 60_000);

  afterAll(async () => {
    await pool?.end();
    await box?.cleanup();
  });

  it('looks each id’s person up by primary key in the prepared plan, never scanning people', async () => {
    const client = await pool.connect();
    try {
      // The plan the query API's reader pool runs (FACTS_SESSION_SETTINGS): one for any ids.
      await client.query('SET plan_cache_mode = force_generic_plan');
      await client.query(`PREPARE facts_plan(text[]) AS ${FACTS_SQL}`);
      const { rows } = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
        `EXPLAIN (FORMAT JSON) EXECUTE facts_plan('{p-1,p-2,anon-7}')`,
      );
      const people = nodesOf(rows[0]!['QUERY PLAN'][0].Plan).filter((n) => n['Relation Name'] === 'people');
      expect(people.map((n) => n['Node Type'])).toEqual(['Index Scan']);
      expect(people[0]!['Index Name']).toBe('people_pkey');
      // the id's own identities row: by primary key too, never a scan or a hash of the table
      const identities = nodesOf(rows[0]!['QUERY PLAN'][0].Plan).filter((n) => n['Relation Name'] === 'identities');
      expect(identities.every((n) => n['Node Type'] === 'Index Scan' || n['Node Type'] === 'Bitmap Heap Scan')).toBe(
        true,
      );
      expect(identities.filter((n) => n['Index Name'] === 'identities_pkey').length).toBeGreaterThanOrEqual(1);
    } finally {
      await client.query('DEALLOCATE ALL');
      await client.query('RESET plan_cache_mode');
      client.release();
    }
  });

  it('answers each of the ids asked in one turn with its own person, a merged id with the one it joined', async () => {
    const facts = createFactsReader(pool);
    const ids = ['p-3', 'nobody', 'anon-7', ...Array.from({ length: 150 }, (_, i) => `p-${PEOPLE - i}`), 'p-7'];
    const answers = await Promise.all(ids.map((id) => facts.get(id)));
    expect(answers.map((f) => f?.profileKey)).toEqual([
      'p-3',
      undefined,
      'p-7',
      ...Array.from({ length: 150 }, (_, i) => `p-${PEOPLE - i}`),
      'p-7',
    ]);
    expect(answers[2]).toMatchObject({ userId: 'p-7', anonymousIds: ['anon-7'] });
    expect(answers[0]).toMatchObject({ userId: null, anonymousIds: [] });
  });

  it('runs the statement’s generic plan on a pool with FACTS_SESSION_SETTINGS, never planning it again per read, with the same answers', async () => {
    const generic = createPool(
      process.env.DATABASE_URL!,
      box.env.PG_SCHEMA!,
      'test-read-generic',
      1,
      0,
      FACTS_SESSION_SETTINGS,
    );
    try {
      const facts = createFactsReader(generic);
      const ids = ['p-3', 'nobody', 'anon-7', 'p-7', `p-${PEOPLE}`];
      const plain = createFactsReader(pool);
      // one id a statement, then all at once: answers as from a pool with the default plan choice
      for (const id of ids) expect(await facts.get(id)).toEqual(await plain.get(id));
      expect(await Promise.all(ids.map((id) => facts.get(id)))).toEqual(
        await Promise.all(ids.map((id) => plain.get(id))),
      );
      // the pool's one connection: every execution of the named statement ran the generic plan
      const { rows } = await generic.query<{ generic_plans: string; custom_plans: string }>(
        `SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = 'profile-facts-batch'`,
      );
      expect(rows).toEqual([{ generic_plans: ids.length + 1, custom_plans: 0 }]);
    } finally {
      await generic.end();
    }
  });

  it('warm opens the connections reads use at once, each with the statement prepared, and a pool with that min keeps them', async () => {
    const kept = createPool(process.env.DATABASE_URL!, box.env.PG_SCHEMA!, 'test-read-warm', 6, FACTS_CONNECTIONS);
    try {
      await createFactsReader(kept).warm();
      expect(kept.totalCount).toBe(FACTS_CONNECTIONS);
      // more connections than that, all held at once: each warmed one shows the statement
      const held = await Promise.all(Array.from({ length: FACTS_CONNECTIONS + 2 }, () => kept.connect()));
      const prepared = await Promise.all(
        held.map(async (c) => (await c.query<{ name: string }>('SELECT name FROM pg_prepared_statements')).rows),
      );
      expect(prepared.filter((rows) => rows.some((r) => r.name === 'profile-facts-batch'))).toHaveLength(
        FACTS_CONNECTIONS,
      );
      // idle past the pool's timeout (shortened here from 10 s), the extra two close, the warmed ones stay
      kept.options.idleTimeoutMillis = 100;
      const warmed = held.filter((_, i) => prepared[i]!.length > 0);
      for (const c of held.filter((c) => !warmed.includes(c))) c.release();
      for (const c of warmed) c.release();
      const deadline = Date.now() + 5000;
      while (kept.totalCount > FACTS_CONNECTIONS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 300));
      expect(kept.totalCount).toBe(FACTS_CONNECTIONS);
      const again = await Promise.all(Array.from({ length: FACTS_CONNECTIONS }, () => kept.connect()));
      const stillPrepared = await Promise.all(
        again.map(
          async (c) => (await c.query<{ name: string }>('SELECT name FROM pg_prepared_statements')).rows.length,
        ),
      );
      again.forEach((c) => c.release());
      expect(stillPrepared).toEqual(Array(FACTS_CONNECTIONS).fill(1));
    } finally {
      await kept.end();
    }
  });

  it('warm opens no more connections than a smaller pool has, and returns', async () => {
    const one = createPool(process.env.DATABASE_URL!, box.env.PG_SCHEMA!, 'test-read-warm-one', 1);
    try {
      await createFactsReader(one).warm();
      expect(one.totalCount).toBe(1);
      expect((await createFactsReader(one).get('p-3'))?.profileKey).toBe('p-3');
    } finally {
      await one.end();
    }
  });
});
