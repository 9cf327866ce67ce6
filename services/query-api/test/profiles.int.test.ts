import type { TopicMessage } from '@pstream/events';
import { DEFAULT_RULES } from '@pstream/lifecycle';
import { createMetrics, createPool, createRedis, type Pool } from '@pstream/platform';
import { FACTS_CONNECTIONS, migrate } from '@pstream/profile-store';
import { createConverter, createSegmentStore } from '@pstream/profile-store';
import type { FastifyInstance } from 'fastify';
import type { Redis } from '@pstream/platform';
import { createSandbox, type Sandbox, silentLog } from '@pstream/testkit';
import { buildApp } from '../src/app';
import { loadConfig } from '../src/config';

const now = Date.now();
const at = (daysAgo: number) => new Date(now - daysAgo * 86_400_000).toISOString();
const base = { v: 1 as const, source: 'test', receivedAt: at(0) };
/** The longest id ingest accepts (128 characters), with characters that need URL encoding. */
const LONG_ID = `长-${'é/?#%'.repeat(25)}x`;

describe('GET /v1/profiles/{id} (docs/api.md §5.1) from the segmenter’s tables', () => {
  let box: Sandbox;
  let pool: Pool;
  let redis: Redis;
  let app: FastifyInstance;

  beforeAll(async () => {
    box = await createSandbox(1);
    pool = createPool(process.env.DATABASE_URL!, box.env.PG_SCHEMA!, 'test-profiles');
    await migrate(pool, box.env.PG_SCHEMA!);
    const store = createSegmentStore({
      pool,
      rules: DEFAULT_RULES,
      convert: createConverter('CNY', new Map()),
      log: silentLog,
    });
    const messages: TopicMessage[] = [
      {
        ...base,
        kind: 'event',
        eventId: 'a1',
        type: 'click',
        anonymousId: 'dev-1',
        profileKey: 'dev-1',
        occurredAt: at(3),
        target: { type: 'product', id: 'p-1' },
        tags: [],
      },
      {
        ...base,
        kind: 'event',
        eventId: 'a2',
        type: 'follow',
        anonymousId: 'dev-1',
        profileKey: 'dev-1',
        occurredAt: at(2),
        target: { type: 'shop', id: 's-1' },
        tags: [],
      },
      {
        ...base,
        kind: 'event',
        eventId: 'u1',
        type: 'purchase',
        userId: 'u-1',
        profileKey: 'u-1',
        occurredAt: at(1),
        target: { type: 'product', id: 'p-1' },
        tags: [],
        amount: 99.5,
        currency: 'CNY',
      },
      {
        ...base,
        kind: 'identify',
        eventId: 'i1',
        userId: 'u-1',
        anonymousId: 'dev-1',
        profileKey: 'u-1',
        occurredAt: at(0),
        traits: { city: 'Hangzhou', birthYear: 1990 },
      },
      {
        ...base,
        kind: 'event',
        eventId: 'l1',
        type: 'click',
        userId: LONG_ID,
        profileKey: LONG_ID,
        occurredAt: at(1),
        target: { type: 'product', id: 'p-1' },
        tags: [],
      },
    ];
    await store.apply(
      messages.map((value, i) => ({ value, offset: String(i) })),
      { groupId: 'g', topic: 't', partition: 0, lastOffset: String(messages.length - 1) },
      now,
    );
    const config = loadConfig(box.env);
    redis = createRedis(config, 'test-profiles');
    app = await buildApp(config, { log: silentLog, redis, pool, checks: [], metrics: createMetrics('query-api') });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    redis?.disconnect();
    await pool?.end();
    await box?.cleanup();
  });

  const get = (id: string) =>
    app.inject({ method: 'GET', url: `/v1/profiles/${id}`, headers: { authorization: 'Bearer dev-api-token' } });

  it('answers a merged anonymousId with the user’s whole profile', async () => {
    const res = await get('dev-1');
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({
      userId: 'u-1',
      anonymousIds: ['dev-1'],
      traits: { city: 'Hangzhou', birthYear: 1990 },
      lifecycle: { stage: 'new', evaluatedAt: new Date(now).toISOString() },
      tiers: { value: 'medium', social: 'silent' },
      interests: [],
      stats: {
        firstSeenAt: at(3),
        lastActiveAt: at(1),
        events: { click: 1, follow: 1, purchase: 1 },
        purchases: 1,
        monetary: { currency: 'CNY', total: 99.5 },
      },
      follows: { count: 1, recent: [{ type: 'shop', id: 's-1', since: at(2) }] },
      consent: { personalization: true },
    });
    expect((await get('u-1')).json()).toMatchObject({ userId: 'u-1', stats: { purchases: 1 } });
  });

  it('reads profiles through its own pool when given one, opened and prepared before the first request', async () => {
    const readPool = createPool(
      process.env.DATABASE_URL!,
      box.env.PG_SCHEMA!,
      'test-profiles-reads',
      FACTS_CONNECTIONS,
      FACTS_CONNECTIONS,
    );
    const own = await buildApp(loadConfig(box.env), {
      log: silentLog,
      redis,
      pool,
      readPool,
      checks: [],
      metrics: createMetrics('query-api'),
    });
    try {
      await own.ready();
      // warmed as the app starts, not awaited by it: wait until all are open and back in the pool
      const deadline = Date.now() + 10_000;
      while (
        (readPool.totalCount < FACTS_CONNECTIONS || readPool.idleCount < FACTS_CONNECTIONS) &&
        Date.now() < deadline
      )
        await new Promise((r) => setTimeout(r, 20));
      expect(readPool.totalCount).toBe(FACTS_CONNECTIONS);
      const { rows } = await readPool.query<{ name: string }>('SELECT name FROM pg_prepared_statements');
      expect(rows.map((r) => r.name)).toEqual(['profile-facts-batch']);
      const answers = await Promise.all(
        Array.from({ length: 20 }, () =>
          own.inject({ method: 'GET', url: '/v1/profiles/dev-1', headers: { authorization: 'Bearer dev-api-token' } }),
        ),
      );
      const expected = (await get('dev-1')).json<{ computedAt: string }>();
      for (const a of answers)
        expect({ ...a.json<{ computedAt: string }>(), computedAt: '' }).toEqual({ ...expected, computedAt: '' });
      expect(readPool.totalCount).toBe(FACTS_CONNECTIONS);
      // the interests routes resolve ids through the shared pool: still answered
      const interests = await own.inject({
        method: 'GET',
        url: '/v1/profiles/nobody-at-all/interests',
        headers: { authorization: 'Bearer dev-api-token' },
      });
      expect(interests.statusCode).toBe(404);
    } finally {
      await own.close();
      await readPool.end();
    }
  });

  it('is 404 for an id nobody has used', async () => {
    expect((await get('nobody-at-all')).statusCode).toBe(404);
  });

  it('reads back an id of 128 characters that needs URL encoding (not 414)', async () => {
    expect(LONG_ID).toHaveLength(128);
    const res = await get(encodeURIComponent(LONG_ID));
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ userId: LONG_ID, stats: { events: { click: 1 } } });
    const interests = await app.inject({
      method: 'GET',
      url: `/v1/profiles/${encodeURIComponent(LONG_ID)}/interests`,
      headers: { authorization: 'Bearer dev-api-token' },
    });
    expect(interests.statusCode).toBe(200);
  });

  it('answers 400 naming the id for %00, other control characters, lone surrogates and over-long ids', async () => {
    for (const id of ['%00', 'a%0Ab', '%ED%A0%80', encodeURIComponent('x'.repeat(129))]) {
      for (const suffix of ['', '/interests']) {
        const res = await app.inject({
          method: 'GET',
          url: `/v1/profiles/${id}${suffix}`,
          headers: { authorization: 'Bearer dev-api-token' },
        });
        expect({ id, suffix, status: res.statusCode }).toEqual({ id, suffix, status: 400 });
        expect(res.json().error.message).toMatch(/id/);
      }
    }
  });

  it('accepts the bearer scheme in any case', async () => {
    for (const scheme of ['bearer', 'BEARER', 'BeArEr']) {
      const res = await app.inject({
        method: 'GET',
        url: '/v1/profiles/u-1',
        headers: { authorization: `${scheme} dev-api-token` },
      });
      expect({ scheme, status: res.statusCode }).toEqual({ scheme, status: 200 });
    }
    expect(
      (await app.inject({ method: 'GET', url: '/v1/profiles/u-1', headers: { authorization: 'Basic dev-api-token' } }))
        .statusCode,
    ).toBe(401);
  });

  it('answers 404 for the interests of an unknown id, like the profile', async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/v1/profiles/nobody-at-all/interests',
      headers: { authorization: 'Bearer dev-api-token' },
    });
    expect(res.statusCode).toBe(404);
    const known = await app.inject({
      method: 'GET',
      url: '/v1/profiles/dev-1/interests',
      headers: { authorization: 'Bearer dev-api-token' },
    });
    expect(known.statusCode).toBe(200);
  });
});
