/**
 * An erasure whose Redis step fails (Redis away for the instance that took the request) is done
 * in Postgres at once, reports `pending`, and is finished by a query API instance that can reach
 * Redis, on its retry timer.
 */
import type { TopicMessage } from '@pstream/events';
import { createInterestStore } from '@pstream/interest-store';
import { DEFAULT_RULES } from '@pstream/lifecycle';
import { createMetrics, createPool, createRedis, type Pool, type Redis } from '@pstream/platform';
import { createConverter, createSegmentStore, migrate } from '@pstream/profile-store';
import { buildApp as buildQuery } from '@pstream/query-api/app';
import { loadConfig as queryConfig } from '@pstream/query-api/config';
import { loadConfig as scorerConfig, storeOptions } from '@pstream/scorer/config';
import { createChunkApplier } from '@pstream/scorer/processor';
import type { FastifyInstance } from 'fastify';
import { Redis as IORedis } from 'ioredis';
import { createSandbox, type Sandbox, silentLog, waitFor } from '@pstream/testkit';

describe('an erasure whose Redis step fails', () => {
  let box: Sandbox;
  let pool: Pool;
  let redis: Redis;
  let away: IORedis;
  const apps: FastifyInstance[] = [];

  beforeAll(async () => {
    box = await createSandbox(1);
    pool = createPool(process.env.DATABASE_URL!, box.env.PG_SCHEMA!, 'test-erasure-retry', 2);
    await migrate(pool, box.env.PG_SCHEMA!);
    redis = createRedis({ REDIS_URL: process.env.REDIS_URL! }, 'test-erasure-retry');
    // a client whose every command fails at once: nothing listens on port 1
    away = new IORedis('redis://127.0.0.1:1', {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    away.on('error', () => undefined);
    await waitFor('the refused client to give up', async () => (away.status === 'end' ? true : undefined));
    const at = new Date().toISOString();
    const click: TopicMessage = {
      v: 1,
      kind: 'event',
      eventId: 'c1',
      source: 'test',
      occurredAt: at,
      receivedAt: at,
      type: 'click',
      userId: 'u-gone',
      profileKey: 'u-gone',
      target: { type: 'product', id: 'p-1' },
      tags: ['category:dress'],
    };
    await createSegmentStore({
      pool,
      rules: DEFAULT_RULES,
      convert: createConverter('CNY', new Map()),
      log: silentLog,
    }).apply([{ value: click, offset: '0' }], { groupId: 'g', topic: 't', partition: 0, lastOffset: '0' }, Date.now());
    const sCfg = scorerConfig(box.env);
    await createChunkApplier(
      createInterestStore(redis, sCfg.REDIS_PREFIX, storeOptions(sCfg)),
      redis,
      sCfg,
      silentLog,
    )([click]);
  }, 60_000);

  afterAll(async () => {
    for (const app of apps) await app.close();
    away?.disconnect();
    redis?.disconnect();
    await pool?.end();
    await box?.cleanup();
  });

  const build = async (client: Redis, retryMs: number) => {
    const app = await buildQuery(queryConfig({ ...box.env, ERASURE_RETRY_MS: String(retryMs) }), {
      log: silentLog,
      redis: client,
      pool,
      checks: [],
      metrics: createMetrics('query-api'),
    });
    apps.push(app);
    return app;
  };
  const auth = { authorization: 'Bearer dev-api-token' };
  const redisKeys = async () => {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${box.env.REDIS_PREFIX}:p:{u-gone}*`, 'COUNT', 1000);
      found.push(...batch);
      cursor = next;
    } while (cursor !== '0');
    return found;
  };

  it('is pending with Postgres clean, then done once an instance reaches Redis', async () => {
    expect((await redisKeys()).length).toBeGreaterThan(0);
    const cut = await build(away as unknown as Redis, 60_000);
    const del = await cut.inject({ method: 'DELETE', url: '/v1/profiles/u-gone', headers: auth });
    expect(del.statusCode).toBe(202);
    const { erasureId } = del.json();
    expect((await cut.inject({ method: 'GET', url: `/v1/erasures/${erasureId}`, headers: auth })).json()).toMatchObject(
      { status: 'pending', doneAt: null },
    );
    expect((await cut.inject({ method: 'GET', url: '/v1/profiles/u-gone', headers: auth })).statusCode).toBe(404);
    expect((await redisKeys()).length).toBeGreaterThan(0);

    const healthy = await build(redis, 100);
    const done = await waitFor('the retry to finish the erasure', async () => {
      const body = (await healthy.inject({ method: 'GET', url: `/v1/erasures/${erasureId}`, headers: auth })).json();
      return body.status === 'done' ? body : undefined;
    });
    expect(done.doneAt).toEqual(expect.any(String));
    expect(await redisKeys()).toEqual([]);
    const row = (
      await pool.query('SELECT pending_ids, postgres_done_at, redis_done_at FROM erasures WHERE id = $1', [erasureId])
    ).rows[0];
    expect(row.pending_ids).toBeNull();
    expect(row.redis_done_at.getTime()).toBeGreaterThanOrEqual(row.postgres_done_at.getTime());
    // unknown erasure ids: 404; not an erasure id at all: 400
    expect(
      (
        await healthy.inject({ method: 'GET', url: '/v1/erasures/00000000-0000-4000-8000-000000000000', headers: auth })
      ).json().error.code,
    ).toBe('QRY_ERASURE_NOT_FOUND');
    expect((await healthy.inject({ method: 'GET', url: '/v1/erasures/nope', headers: auth })).statusCode).toBe(400);
  }, 60_000);
});
