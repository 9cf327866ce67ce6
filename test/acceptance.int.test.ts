import { keys, writeCatalog } from '@pstream/interest-store';
import { createMetrics, createPool, createRedis, type Pool, type Redis } from '@pstream/platform';
import { migrate } from '@pstream/profile-store';
import { buildApp as buildQuery } from '@pstream/query-api/app';
import { loadConfig as queryConfig } from '@pstream/query-api/config';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '@pstream/scorer/config';
import { createScorerConsumer } from '@pstream/scorer/processor';
import { createSandbox, type Sandbox, silentLog, waitFor } from '@pstream/testkit';
import { queryClient } from '@pstream/testkit/services';
import { appliedCount, generateStream, produceEvents } from '@pstream/testkit/streams';

/**
 * "Done means" of the scorer issue: for a seeded stream of hundreds of people, every tag that
 * GET /v1/profiles/{id}/interests returns has the score and value §4.1 defines, to 1e-9 relative,
 * decayed to the response's computedAt. The expectation is computed here by a separate, plain
 * reading of §4.1 — group each person's events into visits, then sum w·2^(−(now−t)/H) directly —
 * sharing no code with packages/scoring.
 */

const MINUTE = 60_000;
const DAY = 86_400_000;
const HALF_LIFE = 30 * DAY;
const GAP = 30 * MINUTE;

type Native = {
  eventId: string;
  type: string;
  userId?: string;
  anonymousId?: string;
  occurredAt: string;
  target: { type: string; id: string };
  tags: string[];
  dwellMs?: number;
};
type Contribution = { weight: number; at: number; tags: Set<string> };

/** §4.1 read literally, for events of one person in order. */
function expectedScores(events: Native[], catalog: Map<string, string[]>, now: number): Map<string, number> {
  type Visit = {
    start: number;
    last: number;
    comments: number;
    likes: number;
    shares: number;
    favorites: number;
    dwell: number | null;
    tags: Set<string>;
  };
  const visits: Visit[] = [];
  const openVisit = new Map<string, Visit>();
  const follows = new Map<string, Contribution>();
  const purchases: Contribution[] = [];
  for (const e of events) {
    const t = Date.parse(e.occurredAt);
    const implicit = `${e.target.type}:${e.target.id}`;
    const tags = new Set([...(e.tags.length > 0 ? e.tags : (catalog.get(implicit) ?? [])), implicit]);
    if (e.type === 'follow') {
      if (!follows.has(implicit)) follows.set(implicit, { weight: 3, at: t, tags });
    } else if (e.type === 'unfollow') {
      follows.delete(implicit);
    } else if (e.type === 'purchase') {
      purchases.push({ weight: 4, at: t, tags });
    } else {
      let v = openVisit.get(implicit);
      if (e.type === 'click' || v === undefined || !(t - v.last < GAP)) {
        v = { start: t, last: t, comments: 0, likes: 0, shares: 0, favorites: 0, dwell: null, tags: new Set() };
        visits.push(v);
        openVisit.set(implicit, v);
      }
      v.last = t;
      for (const tag of tags) v.tags.add(tag);
      if (e.type === 'comment') v.comments++;
      if (e.type === 'like') v.likes++;
      if (e.type === 'share') v.shares++;
      if (e.type === 'favorite') v.favorites++;
      if (e.type === 'dwell') v.dwell = (v.dwell ?? 0) + e.dwellMs!;
    }
  }
  const all: Contribution[] = [...follows.values(), ...purchases];
  for (const v of visits) {
    const f = v.dwell === null ? 1 : v.dwell < 10_000 ? 0.5 : v.dwell <= 60_000 ? 1 : 2;
    all.push({
      weight: (1 + 0.5 * v.comments + 0.5 * v.likes + 2 * v.shares + 1 * v.favorites) * f,
      at: v.start,
      tags: v.tags,
    });
  }
  const scores = new Map<string, number>();
  for (const c of all)
    for (const tag of c.tags)
      scores.set(tag, (scores.get(tag) ?? 0) + c.weight * Math.pow(2, -(now - c.at) / HALF_LIFE));
  return scores;
}

describe('GET /v1/profiles/{id}/interests holds §4.1 against an independent implementation', () => {
  let box: Sandbox;
  let redis: Redis;
  let query: FastifyInstance;
  let pool: Pool;
  const closers: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    box = await createSandbox(4);
    redis = createRedis({ REDIS_URL: process.env.REDIS_URL! }, 'test-acceptance');
    const qCfg = queryConfig(box.env);
    pool = createPool(qCfg.DATABASE_URL, qCfg.PG_SCHEMA, 'test-query');
    await migrate(pool, qCfg.PG_SCHEMA);
    query = await buildQuery(qCfg, { log: silentLog, redis, pool, checks: [], metrics: createMetrics('query-api') });
    closers.push(
      () => query.close(),
      () => pool.end(),
    );
  }, 60_000);

  afterAll(async () => {
    for (const close of closers.reverse()) await close();
    redis.disconnect();
    await box?.cleanup();
  }, 60_000);

  it('matches every tag’s score and value to 1e-9 for hundreds of people', async () => {
    const config = loadConfig(box.env);
    const catalog = new Map([
      ['product:p-0', ['category:bags', 'brand:acme']],
      ['shop:s-1', ['category:shoes']],
      ['content:c-2', ['topic:travel']],
    ]);
    for (const [target, tags] of catalog) await writeCatalog(redis, keys(config.REDIS_PREFIX), target, tags);
    const now = Date.now();
    const { events, people } = generateStream(4, 320, now - 45 * DAY, now - 60_000) as {
      events: Native[];
      people: string[];
    };
    // the stream covers what §4.1 turns on
    const dwells = new Set(events.filter((e) => e.type === 'dwell').map((e) => e.dwellMs));
    for (const ms of [9_999, 10_000, 60_000, 60_001]) expect(dwells.has(ms)).toBe(true);
    expect(events.filter((e) => e.type === 'unfollow').length).toBeGreaterThan(50);
    expect(events.filter((e) => e.type !== 'click' && e.type !== 'follow').length).toBeGreaterThan(1000);
    expect(events.length).toBeGreaterThan(5000);

    const messages = await produceEvents(
      box.kafka,
      config.EVENTS_TOPIC,
      events as unknown as Record<string, unknown>[],
    );
    const scorer = createScorerConsumer(config, { kafka: box.kafka, redis, pool, log: silentLog });
    await scorer.start();
    closers.push(() => scorer.stop());
    const unique = new Set(messages.map((m) => m.eventId)).size;
    await waitFor(
      'every event applied',
      async () => ((await appliedCount(redis, config.REDIS_PREFIX, people)) === unique ? true : undefined),
      60_000,
    );

    // per person, in order, each event id once (the resent duplicates count once)
    const byPerson = new Map<string, Native[]>();
    const ids = new Set<string>();
    for (const e of events) {
      if (ids.has(e.eventId)) continue;
      ids.add(e.eventId);
      const id = e.userId ?? e.anonymousId!;
      byPerson.set(id, [...(byPerson.get(id) ?? []), e]);
    }

    let compared = 0;
    for (const id of people) {
      const body = await queryClient(query).interests(id, { limit: 200 });
      const want = expectedScores(byPerson.get(id) ?? [], catalog, Date.parse(body.computedAt));
      const got = new Map(body.interests.map((i) => [i.tag, i]));
      expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
      for (const [tag, score] of want) {
        const i = got.get(tag)!;
        const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);
        if (rel(i.score, score) > 1e-9 || rel(i.value, 10 * Math.tanh(score / 10)) > 1e-9) {
          throw new Error(`${id} ${tag}: got score ${i.score} value ${i.value}, §4.1 says ${score}`);
        }
        expect(i.dimension).toBe(tag.slice(0, tag.indexOf(':')));
        compared++;
      }
      const scores = body.interests.map((i) => i.score);
      expect(scores).toEqual([...scores].sort((a, b) => b - a));
    }
    expect(compared).toBeGreaterThan(2000);
  }, 90_000);
});
