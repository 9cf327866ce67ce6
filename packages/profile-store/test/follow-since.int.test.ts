import type { TopicMessage } from '@pstream/events';
import { DAY_MS, DEFAULT_RULES } from '@pstream/lifecycle';
import { createPool, type Pool } from '@pstream/platform';
import { createSandbox, prng, type Sandbox, silentLog } from '@pstream/testkit';
import { createConverter } from '../src/fold';
import { migrate } from '../src/migrate';
import { createSegmentStore } from '../src/store';

const T0 = Date.parse('2026-06-01T00:00:00Z');

/**
 * Follows and unfollows of 3 people × 3 targets at distinct event times, in an arrival order
 * unlike event time (late events, as after a retried batch): unfollows land between follows.
 */
function stream(): TopicMessage[] {
  const rand = prng(14);
  const out: TopicMessage[] = [];
  let n = 0;
  for (let p = 0; p < 3; p++) {
    for (let t = 0; t < 3; t++) {
      for (let i = 0; i < 8; i++) {
        const at = new Date(T0 - (n * 7 + 1) * 60_000 - Math.floor(rand() * 30) * DAY_MS).toISOString();
        out.push({
          v: 1,
          kind: 'event',
          eventId: `fs-${n++}`,
          source: 'test',
          type: rand() < 0.6 ? 'follow' : 'unfollow',
          userId: `fs-u${p}`,
          profileKey: `fs-u${p}`,
          occurredAt: at,
          receivedAt: at,
          target: { type: 'shop', id: `fs-s${t}` },
          tags: [],
        } as TopicMessage);
      }
    }
  }
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** The definition (docs/model.md §4.2): latest event wins; `since` starts the last run of follows. */
function expected(events: TopicMessage[]) {
  const pairs = new Map<string, { at: number; follow: boolean }[]>();
  for (const e of events) {
    if (e.kind !== 'event') continue;
    const id = `${e.profileKey}|${e.target.id}`;
    pairs.set(id, [...(pairs.get(id) ?? []), { at: Date.parse(e.occurredAt), follow: e.type === 'follow' }]);
  }
  return [...pairs]
    .map(([id, hs]) => {
      hs.sort((a, b) => a.at - b.at);
      const last = hs[hs.length - 1]!;
      let since: number | null = null;
      if (last.follow) for (let i = hs.length - 1; i >= 0 && hs[i]!.follow; i--) since = hs[i]!.at;
      return `${id}|${last.follow}|${since === null ? '-' : new Date(since).toISOString()}|${new Date(last.at).toISOString()}`;
    })
    .sort();
}

describe('follows.since does not depend on how the stream is chunked', () => {
  let box: Sandbox;
  let pool: Pool;

  beforeAll(async () => {
    box = await createSandbox(1);
    pool = createPool(process.env.DATABASE_URL!, box.env.PG_SCHEMA!, `test-since-${box.id}`, 4);
    await migrate(pool, box.env.PG_SCHEMA!);
  }, 60_000);

  afterAll(async () => {
    await pool?.end();
    await box?.cleanup();
  });

  it.each([1, 2, 5, 13, 72])(
    'chunks of %i give the same follows, since included, as the definition',
    async (size) => {
      await pool.query(
        'TRUNCATE follows, follow_history, follow_daily, follower_mix, applied_events, identities, people, event_counts, purchases, activity, lifecycle_transitions, lifecycle_outbox, consumer_offsets, predicted_traits',
      );
      const store = createSegmentStore({
        pool,
        rules: DEFAULT_RULES,
        convert: createConverter('CNY', new Map()),
        log: silentLog,
      });
      const events = stream();
      for (let i = 0; i < events.length; i += size) {
        const chunk = events.slice(i, i + size).map((value, j) => ({ value, offset: String(i + j) }));
        await store.apply(
          chunk,
          { groupId: 'g', topic: 't', partition: 0, lastOffset: String(i + chunk.length - 1) },
          T0,
        );
      }
      const { rows } = await pool.query<{ row: string }>(
        `SELECT profile_key || '|' || target_id || '|' || following || '|' ||
              coalesce(to_char(since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), '-') || '|' ||
              to_char(changed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS row
       FROM follows ORDER BY 1`,
      );
      const want = expected(events);
      expect(want.some((r) => r.includes('|true|'))).toBe(true);
      expect(rows.map((r) => r.row)).toEqual(want);
    },
    60_000,
  );
});
