import type { TopicMessage } from '@pstream/events';
import { DAY_MS, DEFAULT_RULES } from '@pstream/lifecycle';
import { createPool, type Pool } from '@pstream/platform';
import { createSandbox, type Sandbox, silentLog } from '@pstream/testkit';
import { createConverter } from '../src/fold';
import { migrate } from '../src/migrate';
import { analyzeStale, pruneExpired } from '../src/retention';
import { createSegmentStore } from '../src/store';

const NOW = Date.parse('2026-06-01T12:00:00Z');

function event(n: number, daysAgo: number, receivedDaysAgo: number): TopicMessage {
  const at = new Date(NOW - daysAgo * DAY_MS).toISOString();
  return {
    v: 1,
    kind: 'event',
    eventId: `rt-${n}`,
    source: 'test',
    type: 'click',
    userId: 'rt-u',
    profileKey: 'rt-u',
    occurredAt: at,
    receivedAt: new Date(NOW - receivedDaysAgo * DAY_MS).toISOString(),
    target: { type: 'product', id: `p-${n}` },
    tags: ['category:tea'],
  } as TopicMessage;
}

describe('retention of dedupe records and daily aggregates', () => {
  let box: Sandbox;
  let pool: Pool;

  beforeAll(async () => {
    box = await createSandbox(1);
    pool = createPool(process.env.DATABASE_URL!, box.env.PG_SCHEMA!, `test-retention-${box.id}`, 4);
    await migrate(pool, box.env.PG_SCHEMA!);
  }, 60_000);

  afterAll(async () => {
    await pool?.end();
    await box?.cleanup();
  });

  it('removes days before the window and records before the dedupe window, in small batches, and nothing else', async () => {
    const store = createSegmentStore({
      pool,
      rules: DEFAULT_RULES,
      convert: createConverter('CNY', new Map()),
      log: silentLog,
    });
    // 10 events per day offset: 400, 365 (just outside a 365-day window), 364 (its first day), 3, 0 days ago.
    const offsets = [400, 365, 364, 3, 0];
    const events = offsets.flatMap((d, i) =>
      Array.from({ length: 10 }, (_, j) => event(i * 10 + j, d, d === 0 ? 0 : 5)),
    );
    await store.apply(
      events.map((value, i) => ({ value, offset: String(i) })),
      { groupId: 'g', topic: 't', partition: 0, lastOffset: String(events.length - 1) },
      NOW,
    );
    const days = async (table: string) =>
      (
        await pool.query<{ d: string }>(`SELECT DISTINCT to_char(day, 'YYYY-MM-DD') AS d FROM ${table} ORDER BY 1`)
      ).rows.map((r) => r.d);
    const day = (ago: number) => new Date(NOW - ago * DAY_MS).toISOString().slice(0, 10);

    const pruned = await pruneExpired(pool, NOW, { dedupeWindowHours: 72, retentionDays: 365 }, 3);
    expect(pruned).toEqual({ applied_events: 40, activity_daily: 20, tag_activity_daily: 2 });
    expect(await days('activity_daily')).toEqual([day(364), day(3), day(0)]);
    expect(await days('tag_activity_daily')).toEqual([day(364), day(3), day(0)]);
    const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM applied_events');
    expect(rows[0]!.n).toBe(10); // received now; the rest 5 days ago, past 72 h
    // Facts kept by the model are untouched.
    const { rows: counts } = await pool.query<{ n: number }>(
      "SELECT n::int FROM event_counts WHERE profile_key = 'rt-u'",
    );
    expect(counts[0]!.n).toBe(50);
    expect(await pruneExpired(pool, NOW, { dedupeWindowHours: 72, retentionDays: 365 })).toEqual({
      applied_events: 0,
      activity_daily: 0,
      tag_activity_daily: 0,
    });
  });

  it('analyzes the tables whose statistics are missing or stale, and only those', async () => {
    const schema = box.env.PG_SCHEMA!;
    const stats = async () =>
      new Map(
        (
          await pool.query<{ relname: string; reltuples: number; n_mod: number }>(
            `SELECT s.relname, c.reltuples::float8 AS reltuples, s.n_mod_since_analyze::int AS n_mod
             FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid WHERE s.schemaname = $1`,
            [schema],
          )
        ).rows.map((r) => [r.relname, r]),
      );
    // A backend reports its table counters when idle (within a second): wait until every write of the
    // test above is seen — applied_events 50 inserts + 40 deletes, activity 50 + 20 — so that
    // the second call below cannot meet a late report.
    for (let i = 0; i < 100; i++) {
      const now = await stats();
      if ((now.get('applied_events')?.n_mod ?? 0) >= 90 && (now.get('activity')?.n_mod ?? 0) >= 70) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const analyzed = await analyzeStale(pool);
    expect(analyzed).toEqual([`${schema}.activity`, `${schema}.applied_events`]);
    const after = await stats();
    expect(after.get('applied_events')!.reltuples).toBe(10);
    expect(after.get('applied_events')!.n_mod).toBe(0);
    // Nothing changed since: nothing to do.
    expect(await analyzeStale(pool)).toEqual([]);
  });

  it('with a limit, analyzes the stale tables in turn, least recently analyzed first, so none is kept out', async () => {
    // A schema of its own, so that only these three tables can be stale.
    const schema = `${box.env.PG_SCHEMA!}_turns`;
    await pool.query(`CREATE SCHEMA ${schema}`);
    const own = createPool(process.env.DATABASE_URL!, schema, `test-retention-turns-${box.id}`, 1);
    try {
      await own.query('CREATE TABLE a (x int); CREATE TABLE b (x int); CREATE TABLE c (x int)');
      // Rows changed since the last ANALYZE, as reported: a backend reports its counters when idle (within a second).
      const changed = async (table: string) =>
        (
          await own.query<{ n: number }>(
            `SELECT n_mod_since_analyze::int AS n FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = $2`,
            [schema, table],
          )
        ).rows[0]?.n ?? 0;
      // Writes, then waits until the write is reported, so that no late report can make a table stale after a call.
      const write = async (table: string, rows: number) => {
        const before = await changed(table);
        await own.query(`INSERT INTO ${table} SELECT generate_series(1, $1::int)`, [rows]);
        for (let i = 0; i < 100 && (await changed(table)) < before + rows; i++)
          await new Promise((r) => setTimeout(r, 100));
        expect(await changed(table)).toBeGreaterThanOrEqual(before + rows);
      };
      const t = (name: string) => `${schema}.${name}`;
      for (const table of ['a', 'b', 'c']) await write(table, 100);
      expect(await analyzeStale(own, { tables: 1 })).toEqual([t('a')]);
      // a is stale again, and by far the most changed (1 000 rows over its threshold of 50 + 10 % of 100), but
      // b and c have waited longer: they go first, one a call.
      await write('a', 1_000);
      expect(await analyzeStale(own, { tables: 1 })).toEqual([t('b')]);
      await write('a', 1_000);
      expect(await analyzeStale(own, { tables: 1 })).toEqual([t('c')]);
      expect(await analyzeStale(own, { tables: 1 })).toEqual([t('a')]);
      expect(await analyzeStale(own, { tables: 1 })).toEqual([]);
      // A spent budget still lets one table through, and only one.
      await write('b', 1_000);
      await write('c', 1_000);
      expect(await analyzeStale(own, { budgetMs: 0 })).toEqual([t('b')]);
      expect(await analyzeStale(own)).toEqual([t('c')]);
    } finally {
      await own.end();
      await pool.query(`DROP SCHEMA ${schema} CASCADE`);
    }
  }, 30_000);
});
