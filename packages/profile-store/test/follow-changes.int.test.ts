/**
 * Follower changes (docs/api.md §5.5, migration 020): `follow_daily` counts changes of each
 * person's follow set by event time — a repeat follow is no follow, an unfollow of what was not
 * followed no unfollow — whatever order and chunking the events arrive in, through merges, and for
 * rows written before the migration.
 */
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TopicMessage } from '@pstream/events';
import fc from 'fast-check';
import { DEFAULT_RULES } from '@pstream/lifecycle';
import { createPool, type Pool } from '@pstream/platform';
import { createSandbox, type Sandbox, silentLog } from '@pstream/testkit';
import { createConverter } from '../src/fold';
import { migrate, MIGRATIONS_DIR } from '../src/migrate';
import { createSegmentStore } from '../src/store';

const NOW = Date.parse('2026-12-01T12:00:00Z');
const DAY = 86_400_000;
type Action = 'follow' | 'unfollow';

let n = 0;
const message = (who: string, action: Action, target: string, at: number, anon = false): TopicMessage => {
  const iso = new Date(at).toISOString();
  return {
    v: 1,
    kind: 'event',
    eventId: `f${n++}`,
    source: 'test',
    occurredAt: iso,
    receivedAt: iso,
    type: action,
    ...(anon ? { anonymousId: who } : { userId: who }),
    profileKey: who,
    target: { type: 'shop', id: target },
    tags: [],
  } as TopicMessage;
};

/** Changes of the follow set computed here from each person's events in time order: day → [follows, unfollows]. */
function changes(
  events: readonly { who: string; action: Action; target: string; at: number }[],
): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>();
  const state = new Map<string, boolean>();
  for (const e of [...events].sort((a, b) => a.at - b.at)) {
    const k = `${e.who}|${e.target}`;
    if ((e.action === 'follow') === (state.get(k) === true)) continue;
    state.set(k, e.action === 'follow');
    const key = `${e.target}|${new Date(e.at).toISOString().slice(0, 10)}`;
    const c = out.get(key) ?? [0, 0];
    c[e.action === 'follow' ? 0 : 1]++;
    out.set(key, c);
  }
  return out;
}

describe('follow_daily counts changes of the follow set (docs/api.md §5.5)', () => {
  let box: Sandbox;
  let pool: Pool;
  let offset = 0;

  beforeEach(async () => {
    box = await createSandbox(1);
    pool = createPool(process.env.DATABASE_URL!, box.env.PG_SCHEMA!, 'test-follow-changes', 2);
  });
  afterEach(async () => {
    await pool?.end();
    await box?.cleanup();
  });

  const apply = async (messages: readonly TopicMessage[]) => {
    const store = createSegmentStore({
      pool,
      rules: DEFAULT_RULES,
      convert: createConverter('CNY', new Map()),
      log: silentLog,
    });
    const first = offset;
    offset += messages.length;
    await store.apply(
      messages.map((value, i) => ({ value, offset: String(first + i) })),
      { groupId: 'g', topic: 't', partition: 0, lastOffset: String(offset - 1) },
      NOW,
    );
  };
  const daily = async () => {
    const { rows } = await pool.query<{ k: string; follows: number; unfollows: number }>(
      `SELECT target_id || '|' || to_char(day, 'YYYY-MM-DD') AS k, follows, unfollows FROM follow_daily WHERE follows <> 0 OR unfollows <> 0`,
    );
    return new Map(rows.map((r) => [r.k, [r.follows, r.unfollows] as [number, number]]));
  };
  const followers = async (target: string) =>
    Number(
      (
        await pool.query(
          `SELECT coalesce(sum(n), 0) AS n FROM follower_mix WHERE target_id = $1 AND facet = 'followers'`,
          [target],
        )
      ).rows[0].n,
    );

  it('recounts the rows written before migration 020 as changes', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'migrations-'));
    try {
      // (and 070, which touches nothing of 020's: today's apply path writes daily activity to its table)
      for (const f of await readdir(MIGRATIONS_DIR))
        if (f < '020' || f.startsWith('070_')) await cp(path.join(MIGRATIONS_DIR, f), path.join(dir, f));
      await migrate(pool, box.env.PG_SCHEMA!, dir);
      const sept = Date.parse('2026-09-10T08:00:00Z');
      const nov = Date.parse('2026-11-10T08:00:00Z');
      const events = [
        { who: 'u-1', action: 'follow' as const, target: 's-1', at: sept },
        { who: 'u-1', action: 'follow' as const, target: 's-1', at: nov }, // a repeat follow
        { who: 'u-2', action: 'unfollow' as const, target: 's-1', at: nov }, // never followed
        { who: 'u-3', action: 'follow' as const, target: 's-1', at: sept },
        { who: 'u-3', action: 'unfollow' as const, target: 's-1', at: nov },
      ];
      await apply(events.map((e) => message(e.who, e.action, e.target, e.at)));
      // before: every event counted
      expect(await daily()).toEqual(
        new Map([
          ['s-1|2026-09-10', [2, 0]],
          ['s-1|2026-11-10', [1, 2]],
        ]),
      );
      expect((await migrate(pool, box.env.PG_SCHEMA!))[0]).toBe('020_follow_changes');
      expect(await daily()).toEqual(changes(events));
      expect(await daily()).toEqual(
        new Map([
          ['s-1|2026-09-10', [2, 0]],
          ['s-1|2026-11-10', [0, 1]],
        ]),
      );
      expect(await followers('s-1')).toBe(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('counts the same changes whatever the arrival order and chunking, through merges, and they add up to the followers', async () => {
    await migrate(pool, box.env.PG_SCHEMA!);
    // one seeded draw: 40 people × 12 follow/unfollow steps, the arrival order, duplicates, chunk sizes
    const step = fc.record({
      gap: fc.integer({ min: 1, max: 4 * DAY }),
      follow: fc.integer({ min: 0, max: 9 }),
      target: fc.constantFrom('s-1', 's-2'),
    });
    const [draw] = fc.sample(
      fc.record({
        people: fc.array(fc.array(step, { minLength: 12, maxLength: 12 }), { minLength: 40, maxLength: 40 }),
        order: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 480, maxLength: 480 }),
        again: fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 480, maxLength: 480 }),
        chunks: fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 600, maxLength: 600 }),
      }),
      { seed: 24, numRuns: 1 },
    );
    const events: { who: string; action: Action; target: string; at: number }[] = [];
    const messages: TopicMessage[] = [];
    const merges: TopicMessage[] = [];
    draw!.people.forEach((steps, p) => {
      const who = `u-${p}`;
      const anon = p % 4 === 0 ? `a-${p}` : undefined;
      let at = NOW - 60 * DAY;
      steps.forEach((s, k) => {
        at += s.gap;
        const action: Action = s.follow < 6 ? 'follow' : 'unfollow';
        // an anonymous visitor's first half, merged into the user afterwards
        const asAnon = anon !== undefined && k < 6;
        messages.push(message(asAnon ? anon : who, action, s.target, at, asAnon));
        events.push({ who, action, target: s.target, at });
      });
      if (anon) {
        const iso = new Date(NOW).toISOString();
        merges.push({
          v: 1,
          kind: 'identify',
          eventId: `m${p}`,
          source: 'test',
          occurredAt: iso,
          receivedAt: iso,
          userId: who,
          anonymousId: anon,
          profileKey: who,
          traits: {},
        });
      }
    });
    // shuffled, with duplicates, in chunks of drawn sizes; the merges half-way through
    const shuffled = [...messages, ...messages.filter((_, i) => draw!.again[i] === 0)]
      .map((m, i) => ({ m, key: draw!.order[i % 480]! + i * 1e-9 }))
      .sort((a, b) => a.key - b.key)
      .map((x) => x.m);
    const half = Math.floor(shuffled.length / 2);
    const stream = [...shuffled.slice(0, half), ...merges, ...shuffled.slice(half)];
    for (let i = 0, c = 0; i < stream.length; c++) {
      const size = draw!.chunks[c]!;
      await apply(stream.slice(i, i + size));
      i += size;
    }
    const want = changes(events);
    expect([...want.values()].some(([f]) => f > 0)).toBe(true);
    expect(await daily()).toEqual(want);
    for (const target of ['s-1', 's-2']) {
      let net = 0;
      for (const [k, [f, u]] of await daily()) if (k.startsWith(`${target}|`)) net += f - u;
      expect(net).toBe(await followers(target));
    }
    // the repeats the stream had, which daily did not count
    expect(events.filter((e) => e.action === 'follow').length).toBeGreaterThan(
      [...want.values()].reduce((s, [f]) => s + f, 0),
    );
  }, 60_000);
});
