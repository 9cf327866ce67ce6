import { Analytics } from '@segment/analytics-node';
import { createMetrics, createPool, createRedis, type Pool } from '@pstream/platform';
import { migrate } from '@pstream/profile-store';
import { buildApp as buildQuery } from '@pstream/query-api/app';
import { loadConfig as queryConfig } from '@pstream/query-api/config';
import { loadConfig as scorerConfig } from '@pstream/scorer/config';
import { createScorerConsumer } from '@pstream/scorer/processor';
import { loadConfig as segmenterConfig } from '@pstream/segmenter/config';
import { createSegmenter } from '@pstream/segmenter/processor';
import type { FastifyInstance } from 'fastify';
import type { Redis } from '@pstream/platform';
import { createSandbox, silentLog, waitFor, type Sandbox } from './helpers';
import { readTopic, startIngest } from '../services/ingest/test/helpers';

type Interest = { tag: string; score: number };

/**
 * The official Segment Node SDK, pointed at a listening ingest by changing only its host: its
 * calls arrive normalized on Kafka and change the person's profile (scorer, segmenter and query
 * API wired in-process, as test/pipeline.int.test.ts does).
 */
describe('the official @segment/analytics-node client against ingest', () => {
  jest.setTimeout(60_000);
  let box: Sandbox;
  let ingest: Awaited<ReturnType<typeof startIngest>>;
  let query: FastifyInstance;
  const closers: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    box = await createSandbox();
    ingest = await startIngest(box.kafka, box.env);
    await ingest.app.listen({ host: '127.0.0.1', port: 0 });

    const sCfg = scorerConfig(box.env);
    const redis: Redis = createRedis(sCfg, 'test-scorer');
    const scorer = createScorerConsumer(sCfg, { kafka: box.kafka, redis, log: silentLog });
    await scorer.start();
    closers.push(() => scorer.stop(), async () => redis.disconnect());

    const gCfg = segmenterConfig(box.env);
    const gPool: Pool = createPool(gCfg.DATABASE_URL, gCfg.PG_SCHEMA, 'test-segmenter');
    await migrate(gPool, gCfg.PG_SCHEMA);
    const lifecycleProducer = box.kafka.producer();
    await lifecycleProducer.connect();
    const segmenter = createSegmenter(gCfg, { kafka: box.kafka, pool: gPool, producer: lifecycleProducer, log: silentLog });
    await segmenter.start();
    closers.push(() => segmenter.stop(), () => lifecycleProducer.disconnect(), () => gPool.end());

    const qCfg = queryConfig(box.env);
    const pool: Pool = createPool(qCfg.DATABASE_URL, qCfg.PG_SCHEMA, 'test-query');
    const qRedis = createRedis(qCfg, 'test-query');
    query = await buildQuery(qCfg, { log: silentLog, redis: qRedis, pool, checks: [], metrics: createMetrics('query-api') });
    closers.push(() => query.close(), async () => qRedis.disconnect(), () => pool.end());
  });

  afterAll(async () => {
    await ingest?.close();
    for (const close of closers.reverse()) await close();
    await box?.cleanup();
  });

  it('tracks, identifies and aliases through the SDK, and the profile changes', async () => {
    const { port } = ingest.app.server.address() as { port: number };
    const analytics = new Analytics({ writeKey: 'test-key', host: `http://127.0.0.1:${port}`, flushAt: 10, maxRetries: 0 });
    const failures: unknown[] = [];
    analytics.on('error', (err) => failures.push(err));

    analytics.identify({ userId: 'seg-u1', anonymousId: 'seg-anon-1', traits: { email: 'a@example.org', address: { city: 'Hangzhou', country: 'CN' }, birthday: '1991-05-04' } });
    analytics.track({ userId: 'seg-u1', event: 'Product Viewed', properties: { product_id: 'p-42', category: 'dress', brand: 'acme' } });
    analytics.track({
      userId: 'seg-u1',
      event: 'Order Completed',
      properties: { order_id: 'o-1', currency: 'CNY', revenue: 300, products: [{ product_id: 'p-42', price: 100, quantity: 2, category: 'dress' }, { product_id: 'p-43', price: 100 }] },
    });
    analytics.alias({ userId: 'seg-u1', previousId: 'seg-anon-2' });
    await analytics.closeAndFlush({ timeout: 20_000 });
    expect(failures).toEqual([]);

    const onTopic = await readTopic<Record<string, unknown>>(box.kafka, box.env.EVENTS_TOPIC!, (v) => v.length >= 5);
    const byKind = (kind: string) => onTopic.filter((m) => m.kind === kind);
    expect(byKind('identify')).toEqual([
      expect.objectContaining({ userId: 'seg-u1', anonymousId: 'seg-anon-1', source: 'web', traits: { city: 'Hangzhou', country: 'CN', birthYear: 1991, email: 'a@example.org' } }),
    ]);
    expect(byKind('alias')).toEqual([expect.objectContaining({ userId: 'seg-u1', previousId: 'seg-anon-2' })]);
    const events = byKind('event');
    expect(events.map((e) => [e.type, (e.target as { id: string }).id, e.amount ?? null])).toEqual([
      ['click', 'p-42', null],
      ['purchase', 'p-42', 200],
      ['purchase', 'p-43', 100],
    ]);
    expect(events[0]).toMatchObject({ tags: ['category:dress', 'brand:acme'] });
    // The SDK's messageId became the eventId, so an SDK retry is deduplicated downstream.
    const purchaseIds = events.slice(1).map((e) => e.eventId as string);
    expect(purchaseIds[0]!.replace(/:0$/, '')).toBe(purchaseIds[1]!.replace(/:1$/, ''));

    const profile = await waitFor('the profile of seg-u1', async () => {
      const res = await query.inject({ method: 'GET', url: '/v1/profiles/seg-u1', headers: { authorization: 'Bearer dev-api-token' } });
      if (res.statusCode !== 200) return undefined;
      const body = res.json() as { interests: Interest[]; stats: { purchases: number } | null };
      return body.interests.some((i) => i.tag === 'product:p-43') && body.stats?.purchases === 2 ? body : undefined;
    });
    expect(profile.interests.map((i) => i.tag)).toEqual(expect.arrayContaining(['product:p-42', 'product:p-43', 'category:dress', 'brand:acme']));
  });

  it('a write key reads nothing from the query API, as a bearer token or as Basic auth', async () => {
    for (const authorization of ['Bearer test-key', `Basic ${Buffer.from('test-key:').toString('base64')}`]) {
      const res = await query.inject({ method: 'GET', url: '/v1/profiles/seg-u1', headers: { authorization } });
      expect(res.statusCode).toBe(401);
    }
    const viaHeader = await query.inject({ method: 'GET', url: '/v1/profiles/seg-u1', headers: { 'x-write-key': 'test-key' } });
    expect(viaHeader.statusCode).toBe(401);
  });
});
