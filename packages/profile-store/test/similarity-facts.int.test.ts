import { SOCIAL_ACTIONS } from '@pstream/events';
import { DAY_MS } from '@pstream/lifecycle';
import { createPool, type Pool } from '@pstream/platform';
import { createSandbox, type Sandbox } from '@pstream/testkit';
import { migrate } from '../src/migrate';
import { createSimilarityFacts } from '../src/similarity-facts';

const NOW = Date.parse('2026-06-01T12:00:00Z');
const day = (ago: number) => new Date(NOW - ago * DAY_MS).toISOString().slice(0, 10);

describe("/similar's facts from the covering indexes (migration 170, docs/api.md §5.3)", () => {
  let box: Sandbox;
  let pool: Pool;

  beforeAll(async () => {
    box = await createSandbox(1);
    pool = createPool(process.env.DATABASE_URL!, box.env.PG_SCHEMA!, 'test-similarity-facts', 2);
    await migrate(pool, box.env.PG_SCHEMA!);
  }, 60_000);

  afterAll(async () => {
    await pool?.end();
    await box?.cleanup();
  });

  it('the social index covers the social types: the statement that sums them can use it', async () => {
    // `similarityInputs` filters on SOCIAL_TYPES_SQL; Postgres uses a partial index only when the
    // statement's filter implies the index's predicate, so the two lists must stay the same.
    const { rows } = await pool.query<{ pred: string }>(
      `SELECT pg_get_expr(i.indpred, i.indrelid) AS pred FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
       WHERE c.relname = 'activity_social' AND c.relnamespace = current_schema()::regnamespace`,
    );
    const listed = [...rows[0]!.pred.matchAll(/'([a-z_]+)'::text/g)].map((m) => m[1]).sort();
    expect(listed).toEqual([...SOCIAL_ACTIONS].sort());
    expect(rows[0]!.pred).toContain('target_type IS NOT NULL');
  });

  it('sums spend over 365 days and social interactions on targets over 30, read from the indexes', async () => {
    const at = (ago: number) => new Date(NOW - ago * DAY_MS + 60_000).toISOString();
    await pool.query(
      `INSERT INTO people (profile_key, first_seen_at, last_active_at, stage_since, stage_evaluated_at)
       SELECT k, $1, $1, $1, $1 FROM unnest(ARRAY['sf-a', 'sf-b']) k`,
      [at(400)],
    );
    await pool.query(
      `INSERT INTO purchases (profile_key, source, event_id, occurred_at, amount, currency, base_amount) VALUES
         ('sf-a', 't', 'p1', $1, 100, 'CNY', 100), ('sf-a', 't', 'p2', $2, 50, 'CNY', 50),
         ('sf-a', 't', 'p3', $3, 7, 'USD', NULL)`,
      [at(364), at(366), at(1)],
    );
    await pool.query(
      `INSERT INTO activity (profile_key, day, type, target_type, target_id, tags, n) VALUES
         ('sf-a', $1, 'like', 'product', 'x', '', 2), ('sf-a', $1, 'like', 'product', 'x', '', 1),
         ('sf-a', $2, 'share', 'product', 'y', '', 4), ('sf-a', $3, 'comment', 'product', 'y', '', 8),
         ('sf-a', $1, 'click', 'product', 'x', '', 16), ('sf-a', $1, 'like', NULL, NULL, 'category:tea', 32),
         ('sf-b', $1, 'favorite', 'shop', 's', '', 1)`,
      [day(0), day(29), day(30)],
    );
    await pool.query('ANALYZE purchases, activity');
    const got = await createSimilarityFacts(pool).similarityInputs(['sf-b', 'sf-a', 'sf-none', 'sf-a'], NOW);
    expect(got).toEqual(
      new Map([
        ['sf-a', { spend: 100, social: 7, allowed: true }],
        ['sf-b', { spend: 0, social: 1, allowed: true }],
        ['sf-none', { spend: 0, social: 0, allowed: true }],
      ]),
    );
  });
});
