import type { TopicMessage } from '@pstream/events';
import { DEFAULT_RULES } from '@pstream/lifecycle';
import { createPool, type Pool } from '@pstream/platform';
import { createSandbox, type Sandbox, silentLog } from '@pstream/testkit';
import { createFollowersReader } from '../src/followers';
import { createConverter } from '../src/fold';
import { migrate } from '../src/migrate';
import { createSegmentStore } from '../src/store';

const NOW = Date.parse('2026-06-01T12:00:00Z');

/** The overlap of two targets beyond the sketch size: an estimate, near the truth, marked so. */
describe('follower overlap (docs/api.md §5.5)', () => {
  let box: Sandbox;
  let pool: Pool;

  beforeAll(async () => {
    box = await createSandbox(1);
    pool = createPool(process.env.DATABASE_URL!, box.env.PG_SCHEMA!, 'test-overlap', 2);
    await migrate(pool, box.env.PG_SCHEMA!);
    // people 0-2999 follow s-a, people 2000-3999 follow s-b: 3000 and 2000 followers, 1000 in both
    const at = new Date(NOW - 3_600_000).toISOString();
    const follow = (i: number, target: string): TopicMessage => ({
      v: 1,
      kind: 'event',
      eventId: `f-${i}-${target}`,
      source: 'test',
      occurredAt: at,
      receivedAt: at,
      type: 'follow',
      userId: `u-${i}`,
      profileKey: `u-${i}`,
      target: { type: 'shop', id: target },
      tags: [],
    });
    const messages = [
      ...Array.from({ length: 3000 }, (_, i) => follow(i, 's-a')),
      ...Array.from({ length: 2000 }, (_, i) => follow(2000 + i, 's-b')),
    ];
    const store = createSegmentStore({
      pool,
      rules: DEFAULT_RULES,
      convert: createConverter('CNY', new Map()),
      log: silentLog,
    });
    await store.apply(
      messages.map((value, i) => ({ value, offset: String(i) })),
      { groupId: 'g', topic: 't', partition: 0, lastOffset: String(messages.length - 1) },
      NOW,
    );
  }, 60_000);

  afterAll(async () => {
    await pool?.end();
    await box?.cleanup();
  });

  it('is exact while both targets fit the sketch, and a close estimate beyond', async () => {
    const reader = createFollowersReader(pool);
    const a = { type: 'shop', id: 's-a' };
    const b = { type: 'shop', id: 's-b' };
    expect(await reader.overlap(a, b, 3000)).toEqual({ a: 3000, b: 2000, both: 1000, jaccard: 0.25, exact: true });
    const estimate = await reader.overlap(a, b, 800);
    expect(estimate).toMatchObject({ a: 3000, b: 2000, exact: false });
    // bottom-k with k = 800: the standard error of J is about √(J(1−J)/k) ≈ 0.015; allow 4 of them
    expect(Math.abs(estimate.jaccard - 0.25)).toBeLessThan(0.06);
    expect(Math.abs(estimate.both - 1000)).toBeLessThan(200);
    // the sample of followers is the same on every call and drawn across the whole set
    const sample = await reader.personalizedSample(a, 300);
    expect(await reader.personalizedSample(a, 300)).toEqual(sample);
    const indexes = sample.map((id) => Number(id.slice(2)));
    expect(indexes.filter((i) => i < 1000).length).toBeGreaterThan(60);
    expect(indexes.filter((i) => i >= 2000).length).toBeGreaterThan(60);
  });
});
