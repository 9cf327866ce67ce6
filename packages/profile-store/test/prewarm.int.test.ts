import { createPool, type Pool } from '@pstream/platform';
import { createSandbox, type Sandbox } from '@pstream/testkit';
import { migrate } from '../src/migrate';
import { prewarm, QUERY_PREWARM } from '../src/prewarm';

describe('prewarm: the query API reads its hot relations at start (migration 210, docs/operations.md)', () => {
  let box: Sandbox;
  let pool: Pool;

  beforeAll(async () => {
    box = await createSandbox(1);
    pool = createPool(process.env.DATABASE_URL!, box.env.PG_SCHEMA!, 'test-prewarm', 2);
    await migrate(pool, box.env.PG_SCHEMA!);
  }, 60_000);

  afterAll(async () => {
    await pool?.end();
    await box?.cleanup();
  });

  it('migration 210 leaves pg_prewarm installed outside the schema, and runs again on another schema', async () => {
    const ext = await pool.query<{ ns: string }>(
      `SELECT n.nspname AS ns FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_prewarm'`,
    );
    expect(ext.rows).toEqual([{ ns: 'public' }]);
    const other = `${box.env.PG_SCHEMA!}_b`;
    const second = createPool(process.env.DATABASE_URL!, other, 'test-prewarm', 1);
    try {
      expect(await migrate(second, other)).toContain('210_pg_prewarm');
    } finally {
      await pool.query(`DROP SCHEMA IF EXISTS ${other} CASCADE`);
      await second.end();
    }
    // dropping a deployment's schema left the extension to the others
    expect((await pool.query(`SELECT 1 FROM pg_extension WHERE extname = 'pg_prewarm'`)).rowCount).toBe(1);
  });

  it("loads every default relation of this schema whole, in its mode, and says which don't exist", async () => {
    await pool.query(
      `INSERT INTO purchases (profile_key, source, event_id, occurred_at, amount, currency, base_amount)
       SELECT 'pw-' || i, 't', 'e' || i, now(), 1, 'CNY', 1 FROM generate_series(1, 3000) i`,
    );
    await pool.query(
      `INSERT INTO activity (profile_key, day, type, target_type, target_id, tags, n)
       SELECT 'pw-' || i, current_date, 'like', 'product', 'x', 'category:tea', 1 FROM generate_series(1, 3000) i`,
    );
    const asked = new Map([...QUERY_PREWARM, ['no_such_relation', 'buffer' as const]]);
    // a few blocks a step, so the larger relations are read in several steps that must add up to the whole
    const done = await prewarm(pool, asked, { stepBlocks: 3 });
    expect(done!.map((d) => [d.relation, d.mode])).toEqual([...asked]);
    // every default relation exists in the schema (a misspelt name would come back missing)
    expect(done!.filter((d) => d.missing).map((d) => d.relation)).toEqual(['no_such_relation']);
    expect(done!.filter((d) => d.error || d.stopped)).toEqual([]);
    const { rows } = await pool.query<{ relation: string; blocks: string | null }>(
      `SELECT r AS relation, pg_relation_size(to_regclass(r)) / 8192 AS blocks FROM unnest($1::text[]) r`,
      [[...asked.keys()]],
    );
    for (const { relation, blocks } of rows) {
      const got = done!.find((d) => d.relation === relation)!;
      if (blocks === null) expect(got).toMatchObject({ blocks: 0, missing: true });
      else expect(got).toMatchObject({ blocks: Number(blocks) });
      if (blocks !== null) expect(got.missing).toBeUndefined();
    }
    // the relations written above hold pages: a prewarm that read nothing would fail here
    expect(done!.find((d) => d.relation === 'activity')!.blocks).toBeGreaterThan(10);
    expect(done!.find((d) => d.relation === 'activity_social')!.blocks).toBeGreaterThan(1);
  });

  it("looks names up in the deployment's own schema only, and stops between steps once asked to", async () => {
    const other = `pw_public_only_${box.env.PG_SCHEMA!}`;
    await pool.query(`CREATE TABLE public.${other} AS SELECT g FROM generate_series(1, 5000) g`);
    try {
      // found through the pool's search_path (schema, public) but not the deployment's: not read
      expect(await prewarm(pool, new Map([[other, 'read']]))).toEqual([
        expect.objectContaining({ relation: other, blocks: 0, missing: true }),
      ]);
    } finally {
      await pool.query(`DROP TABLE public.${other}`);
    }
    const stop = new AbortController();
    stop.abort();
    const done = await prewarm(
      pool,
      new Map([
        ['activity', 'read'],
        ['people', 'read'],
      ]),
      { signal: stop.signal },
    );
    expect(done).toEqual([expect.objectContaining({ relation: 'activity', blocks: 0, stopped: true })]);
  });
});
