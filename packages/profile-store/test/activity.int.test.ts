import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TopicMessage } from '@pstream/events';
import { DAY_MS, DEFAULT_RULES } from '@pstream/lifecycle';
import { createPool, type Pool } from '@pstream/platform';
import { createSandbox, type Sandbox, silentLog } from '@pstream/testkit';
import { createAudienceStore, type FactLeaf } from '../src/audiences';
import { createConverter } from '../src/fold';
import { migrate, MIGRATIONS_DIR } from '../src/migrate';
import { pruneExpired } from '../src/retention';
import { createSegmentStore } from '../src/store';

const NOW = Date.parse('2026-06-01T12:00:00Z');
const day = (ago: number) => new Date(NOW - ago * DAY_MS).toISOString().slice(0, 10);

let seq = 0;
function event(key: string, type: string, daysAgo: number, target: string, tags: string[]): TopicMessage {
  const at = new Date(NOW - daysAgo * DAY_MS).toISOString();
  return {
    v: 1,
    kind: 'event',
    eventId: `act-${++seq}`,
    source: 'test',
    type,
    userId: key,
    profileKey: key,
    occurredAt: at,
    receivedAt: at,
    target: { type: 'product', id: target },
    tags,
  } as TopicMessage;
}

/** The old tables' rows as the views give them, in a fixed order. */
async function viewRows(pool: Pool, prefix: string) {
  const a = await pool.query(
    `SELECT profile_key, to_char(day, 'YYYY-MM-DD') AS day, type, target_type, target_id, n FROM activity_daily
     WHERE profile_key LIKE $1 ORDER BY 1, 2, 3, 4, 5`,
    [`${prefix}%`],
  );
  const t = await pool.query(
    `SELECT profile_key, to_char(day, 'YYYY-MM-DD') AS day, type, tag, n FROM tag_activity_daily
     WHERE profile_key LIKE $1 ORDER BY 1, 2, 3, 4`,
    [`${prefix}%`],
  );
  return { activity: a.rows, tags: t.rows };
}

describe('daily activity as one append-only table (migration 070)', () => {
  let box: Sandbox;
  let pool: Pool;

  beforeAll(async () => {
    box = await createSandbox(1);
    pool = createPool(process.env.DATABASE_URL!, box.env.PG_SCHEMA!, `test-activity-${box.id}`, 4);
  }, 60_000);

  afterAll(async () => {
    await pool?.end();
    await box?.cleanup();
  });

  it('converts the rows of the old tables: the views and the leaves answer as before', async () => {
    // the schema as it was before 070, with rows in the old tables
    const before = await mkdtemp(path.join(os.tmpdir(), 'migrations-'));
    try {
      // (every migration from 070 on: later ones may build on `activity`, as 170 does)
      await cp(MIGRATIONS_DIR, before, { recursive: true, filter: (f) => !/\/(0[7-9]|[1-9]\d)\d_[^/]*$/.test(f) });
      await migrate(pool, box.env.PG_SCHEMA!, before);
    } finally {
      await rm(before, { recursive: true, force: true });
    }
    await pool.query(
      `INSERT INTO activity_daily (profile_key, day, type, target_type, target_id, n) VALUES
         ('old-a', $1, 'click', 'product', 'p-1', 3), ('old-a', $2, 'click', 'product', 'p-2', 1), ('old-b', $1, 'like', 'shop', 's-1', 2)`,
      [day(1), day(40)],
    );
    await pool.query(
      `INSERT INTO tag_activity_daily (profile_key, day, type, tag, n) VALUES
         ('old-a', $1, 'click', 'category:tea', 4), ('old-a', $2, 'click', 'brand:x', 1), ('old-c', $1, 'like', 'category:tea', 2)`,
      [day(1), day(40)],
    );
    const old = await viewRows(pool, 'old-');
    await migrate(pool, box.env.PG_SCHEMA!);
    expect(await viewRows(pool, 'old-')).toEqual(old);

    const leaves = createAudienceStore(pool);
    const did = (d: Omit<Extract<FactLeaf, { did: unknown }>['did'], 'inLastDays'>, inLastDays = 30): FactLeaf => ({
      did: { inLastDays, ...d },
    });
    const keys = async (leaf: FactLeaf) => (await leaves.leafKeys(leaf, NOW)).sort();
    // a tag row without its target counts towards the tag, never towards the type
    expect(await keys(did({ type: 'click', atLeast: 3 }))).toEqual(['old-a']);
    expect(await keys(did({ type: 'like', atLeast: 1 }))).toEqual(['old-b']);
    expect(await keys(did({ type: 'like', tag: 'category:tea', atLeast: 2 }))).toEqual(['old-c']);
    expect(await keys(did({ type: 'click', tag: 'category:tea', atLeast: 4 }))).toEqual(['old-a']);
    expect(await keys(did({ type: 'click', tag: 'brand:x', atLeast: 1 }, 60))).toEqual(['old-a']);
    expect(await keys(did({ type: 'click', tag: 'brand:x', atLeast: 1 }))).toEqual([]);
  });

  it('counts every tag as often as the events carry it, whatever the chunking, and merges and prunes whole', async () => {
    const store = createSegmentStore({
      pool,
      rules: DEFAULT_RULES,
      convert: createConverter('CNY', new Map()),
      log: silentLog,
    });
    const odd = 'note:a "quoted", {braced} \\ back\\slash';
    const events = [
      event('new-a', 'click', 0, 'p-1', ['category:tea', 'category:tea', odd]),
      event('new-a', 'click', 0, 'p-1', ['category:tea']),
      event('new-a', 'click', 0, 'p-1', ['category:tea', 'category:tea', odd]),
      event('new-a', 'click', 2, 'p-2', []),
      event('new-a', 'like', 2, 'p-2', ['brand:b']),
      event('new-b', 'click', 0, 'p-1', ['brand:b']),
      event('new-b', 'click', 400, 'p-1', ['brand:b']),
    ];
    let offset = 0;
    for (const chunk of [events.slice(0, 2), events.slice(2, 5), events.slice(5)]) {
      await store.apply(
        chunk.map((value) => ({ value, offset: String(offset++) })),
        { groupId: 'g', topic: 't', partition: 0, lastOffset: String(offset - 1) },
        NOW,
      );
    }
    expect(await viewRows(pool, 'new-')).toEqual({
      activity: [
        { profile_key: 'new-a', day: day(2), type: 'click', target_type: 'product', target_id: 'p-2', n: 1 },
        { profile_key: 'new-a', day: day(2), type: 'like', target_type: 'product', target_id: 'p-2', n: 1 },
        { profile_key: 'new-a', day: day(0), type: 'click', target_type: 'product', target_id: 'p-1', n: 3 },
        { profile_key: 'new-b', day: day(400), type: 'click', target_type: 'product', target_id: 'p-1', n: 1 },
        { profile_key: 'new-b', day: day(0), type: 'click', target_type: 'product', target_id: 'p-1', n: 1 },
      ],
      tags: [
        { profile_key: 'new-a', day: day(2), type: 'like', tag: 'brand:b', n: 1 },
        { profile_key: 'new-a', day: day(0), type: 'click', tag: 'category:tea', n: 5 },
        { profile_key: 'new-a', day: day(0), type: 'click', tag: odd, n: 2 },
        { profile_key: 'new-b', day: day(400), type: 'click', tag: 'brand:b', n: 1 },
        { profile_key: 'new-b', day: day(0), type: 'click', tag: 'brand:b', n: 1 },
      ],
    });

    const leaves = createAudienceStore(pool);
    const tea = (atLeast: number): Extract<FactLeaf, { did: unknown }> => ({
      did: { type: 'click', tag: 'category:tea', atLeast, inLastDays: 7 },
    });
    expect(await leaves.leafKeys(tea(5), NOW)).toEqual(['new-a']);
    expect(await leaves.leafKeys(tea(6), NOW)).toEqual([]);
    expect(await leaves.leafKeys(tea(5), NOW, ['new-a', 'new-b'])).toEqual(['new-a']);
    expect(await leaves.holdingAll([{ leaf: tea(6), negated: true }], NOW, ['new-a', 'new-b'])).toEqual([
      'new-a',
      'new-b',
    ]);
    expect(
      await leaves.observe([tea(5), { did: { type: 'click', tag: odd, atLeast: 2, inLastDays: 1 } }], NOW, 'new-a'),
    ).toEqual([
      { holds: true, observed: 5 },
      { holds: true, observed: 2 },
    ]);
    // holds until the window no longer reaches today
    expect(await leaves.didHoldsUntil(tea(5), NOW, ['new-a'])).toEqual(
      new Map([['new-a', Date.parse(`${day(-7)}T00:00:00Z`)]]),
    );
    expect((await leaves.similarityFacts(['new-a'], NOW)).get('new-a')).toEqual({ spend: 0, social: 1 });

    // a merge moves the rows; the views sum them with the surviving person's own
    await store.apply(
      [
        {
          value: {
            v: 1,
            kind: 'alias',
            eventId: 'act-alias',
            source: 'test',
            userId: 'new-a',
            previousId: 'new-b',
            profileKey: 'new-a',
            occurredAt: new Date(NOW).toISOString(),
            receivedAt: new Date(NOW).toISOString(),
          },
          offset: String(offset),
        },
      ],
      { groupId: 'g', topic: 't', partition: 0, lastOffset: String(offset) },
      NOW,
    );
    const merged = await viewRows(pool, 'new-');
    expect(merged.activity.filter((r) => r.day === day(0))).toEqual([
      { profile_key: 'new-a', day: day(0), type: 'click', target_type: 'product', target_id: 'p-1', n: 4 },
    ]);
    expect(merged.tags.map((r) => r.profile_key)).not.toContain('new-b');

    // retention removes the old day whole and counts the view rows it removed
    expect(await pruneExpired(pool, NOW, { dedupeWindowHours: 72, retentionDays: 365 }, 1)).toMatchObject({
      activity_daily: 1,
      tag_activity_daily: 1,
    });
    expect((await viewRows(pool, 'new-')).activity.map((r) => r.day)).not.toContain(day(400));
  });
});
