/**
 * The catalog (docs/api.md §5.6) through the query API, and its effect in the scorer: a tagless event
 * about a target stored there gets the target's tags; one about an unknown target gets only its
 * implicit tag.
 */
import type { TopicMessage } from '@pstream/events';
import { createInterestStore } from '@pstream/interest-store';
import { createMetrics, type Redis } from '@pstream/platform';
import { buildApp as buildQuery } from '@pstream/query-api/app';
import { loadConfig as queryConfig } from '@pstream/query-api/config';
import { loadConfig as scorerConfig, storeOptions } from '@pstream/scorer/config';
import { createChunkApplier } from '@pstream/scorer/processor';
import type { FastifyInstance } from 'fastify';
import { type Sandbox, silentLog } from '@pstream/testkit';
import { type StoreSandbox, storeSandbox } from '@pstream/testkit/services';

describe('the catalog (docs/api.md §5.6)', () => {
  let stores: StoreSandbox;
  let box: Sandbox;
  let redis: Redis;
  let query: FastifyInstance;

  beforeAll(async () => {
    stores = await storeSandbox('test-catalog');
    ({ box, redis } = stores);
    const { pool } = stores;
    query = await buildQuery(queryConfig({ ...box.env, API_TOKENS: 'all=*,reader=profiles:read' }), {
      log: silentLog,
      redis,
      pool,
      checks: [],
      metrics: createMetrics('query-api'),
    });
  }, 60_000);

  afterAll(async () => {
    await query?.close();
    await stores?.close();
  });

  const call = (method: 'GET' | 'PUT', url: string, token: string, payload?: unknown) =>
    query.inject({
      method,
      url,
      headers: { authorization: `Bearer ${token}` },
      ...(payload !== undefined && { payload: payload as object }),
    });

  it('stores and returns a target’s tags, needs audiences:write to write, and refuses bad tags naming them', async () => {
    expect((await call('GET', '/v1/catalog/product/p-9', 'reader')).json().error.code).toBe('QRY_CATALOG_NOT_FOUND');
    const put = await call('PUT', '/v1/catalog/product/p-9', 'all', {
      tags: ['category:dress', 'brand:acme', 'category:dress'],
    });
    expect(put.statusCode).toBe(200);
    expect(put.json()).toEqual({ target: { type: 'product', id: 'p-9' }, tags: ['category:dress', 'brand:acme'] });
    const got = await call('GET', '/v1/catalog/product/p-9', 'reader');
    expect(got.json()).toEqual({ target: { type: 'product', id: 'p-9' }, tags: ['category:dress', 'brand:acme'] });

    const forbidden = await call('PUT', '/v1/catalog/product/p-9', 'reader', { tags: [] });
    expect(forbidden.statusCode).toBe(403);
    expect(forbidden.json().error.message).toContain('audiences:write');
    const bad = await call('PUT', '/v1/catalog/product/p-9', 'all', { tags: ['Dress'] });
    expect(bad.statusCode).toBe(400);
    expect(JSON.stringify(bad.json().error.details)).toContain('tags');
    expect((await call('PUT', '/v1/catalog/planet/p-9', 'all', { tags: [] })).statusCode).toBe(400);
    // nothing half-applied: the refused writes left the entry as it was
    expect((await call('GET', '/v1/catalog/product/p-9', 'reader')).json().tags).toEqual([
      'category:dress',
      'brand:acme',
    ]);
  });

  it('gives tagless events about a catalogued target its tags in the scorer', async () => {
    await call('PUT', '/v1/catalog/product/p-7', 'all', { tags: ['style:casual'] });
    const at = new Date().toISOString();
    const click = (eventId: string, id: string): TopicMessage => ({
      v: 1,
      kind: 'event',
      eventId,
      source: 'test',
      occurredAt: at,
      receivedAt: at,
      type: 'click',
      userId: 'u-1',
      profileKey: 'u-1',
      target: { type: 'product', id },
      tags: [],
    });
    const sCfg = scorerConfig(box.env);
    await createChunkApplier(
      createInterestStore(redis, sCfg.REDIS_PREFIX, storeOptions(sCfg)),
      redis,
      sCfg,
      silentLog,
    )([click('c1', 'p-7'), click('c2', 'p-unknown')]);
    const tags = (await call('GET', '/v1/profiles/u-1/interests', 'reader'))
      .json()
      .interests.map((i: { tag: string }) => i.tag)
      .sort();
    expect(tags).toEqual(['product:p-7', 'product:p-unknown', 'style:casual']);
  });
});
