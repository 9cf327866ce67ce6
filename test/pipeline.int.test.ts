import { buildApp as buildIngest } from '@pstream/ingest/app';
import { loadConfig as ingestConfig } from '@pstream/ingest/config';
import { KafkaPublisher } from '@pstream/ingest/publisher';
import { createMetrics, createPool, createRedis } from '@pstream/platform';
import { migrate } from '@pstream/profile-store';
import { buildApp as buildQuery } from '@pstream/query-api/app';
import { loadConfig as queryConfig } from '@pstream/query-api/config';
import { loadConfig as scorerConfig } from '@pstream/scorer/config';
import { createScorerConsumer } from '@pstream/scorer/processor';
import { loadConfig as segmenterConfig } from '@pstream/segmenter/config';
import { createSegmenter } from '@pstream/segmenter/processor';
import { forwardWeight, decayedScore, tagValue } from '@pstream/scoring';
import type { Profile, QueryClient } from '@pstream/client';
import type { FastifyInstance } from 'fastify';
import { createSandbox, type Sandbox, silentLog, waitFor } from '@pstream/testkit';
import { queryClient } from '@pstream/testkit/services';
import { TEST_DECAY } from '@pstream/scoring/testing';

const auth = { 'x-write-key': 'dev-write-key' };
const bearer = { authorization: 'Bearer dev-api-token' };

describe('the thin path: POST /v1/events → Kafka → scorer + segmenter → GET /v1/profiles/{id}', () => {
  let box: Sandbox;
  let ingest: FastifyInstance;
  let query: FastifyInstance;
  let client: QueryClient;
  const closers: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    box = await createSandbox();
    const iCfg = ingestConfig(box.env);
    const publisher = new KafkaPublisher({
      kafka: box.kafka,
      topic: iCfg.EVENTS_TOPIC,
      log: silentLog,
      timeoutMs: iCfg.PRODUCE_TIMEOUT_MS,
      breakerMs: iCfg.KAFKA_BREAKER_MS,
    });
    await publisher.start();
    closers.push(() => publisher.stop());
    ingest = await buildIngest(iCfg, {
      log: silentLog,
      publisher,
      checks: [],
      metrics: createMetrics('ingest'),
    });

    const sCfg = scorerConfig(box.env);
    const redis = createRedis(sCfg, 'test-scorer');
    const gCfg = segmenterConfig(box.env);
    const pool = createPool(gCfg.DATABASE_URL, gCfg.PG_SCHEMA, 'test-segmenter');
    await migrate(pool, gCfg.PG_SCHEMA);
    const scorer = createScorerConsumer(sCfg, { kafka: box.kafka, redis, pool, log: silentLog });
    await scorer.start();
    closers.push(
      () => scorer.stop(),
      async () => redis.disconnect(),
    );

    const lifecycleProducer = box.kafka.producer();
    await lifecycleProducer.connect();
    const segmenter = createSegmenter(gCfg, { kafka: box.kafka, pool, producer: lifecycleProducer, log: silentLog });
    await segmenter.start();
    closers.push(
      () => segmenter.stop(),
      () => lifecycleProducer.disconnect(),
      () => pool.end(),
    );

    const qCfg = queryConfig(box.env);
    const qRedis = createRedis(qCfg, 'test-query');
    const qPool = createPool(qCfg.DATABASE_URL, qCfg.PG_SCHEMA, 'test-query');
    query = await buildQuery(qCfg, {
      log: silentLog,
      redis: qRedis,
      pool: qPool,
      checks: [],
      metrics: createMetrics('query-api'),
    });
    client = queryClient(query);
    closers.push(
      () => query.close(),
      async () => qRedis.disconnect(),
      () => qPool.end(),
    );
  }, 60_000);

  afterAll(async () => {
    await ingest?.close();
    for (const close of closers.reverse()) await close();
    await box?.cleanup();
  }, 60_000);

  async function profileOf(id: string, until: (p: Profile) => boolean): Promise<Profile> {
    return waitFor(`profile ${id}`, async () => {
      const body = await client.profile(id);
      return until(body) ? body : undefined;
    });
  }

  it('an accepted event shows up in the profile with its decayed score and the stage', async () => {
    const occurredAt = new Date(Date.now() - 3 * 86_400_000).toISOString();
    const res = await ingest.inject({
      method: 'POST',
      url: '/v1/events',
      headers: auth,
      payload: {
        eventId: 'e-1',
        type: 'follow',
        userId: 'u-1',
        occurredAt,
        target: { type: 'shop', id: 's-9' },
        tags: ['category:dress'],
      },
    });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ accepted: 1, rejected: [] });

    const profile = await profileOf('u-1', (p) => p.interests.length === 2 && p.lifecycle?.stage === 'potential');
    const decay = TEST_DECAY;
    const expected = decayedScore(
      forwardWeight(3, Date.parse(occurredAt), decay),
      Date.parse(profile.computedAt),
      decay,
    );
    for (const tag of ['category:dress', 'shop:s-9']) {
      const interest = profile.interests.find((i) => i.tag === tag)!;
      expect(interest.score).toBeCloseTo(expected, 9);
      expect(interest.value).toBeCloseTo(tagValue(expected), 9);
    }
    // 3 days of decay with a 30-day half-life: 3 · 2^(−0.1)
    expect(profile.interests[0]!.score).toBeCloseTo(3 * 2 ** -0.1, 4);
    expect(profile.stats?.events).toEqual({ follow: 1 });
  });

  it('a batch is accepted per event: invalid ones are named, valid ones land', async () => {
    const res = await ingest.inject({
      method: 'POST',
      url: '/v1/events',
      headers: auth,
      payload: {
        events: [
          { type: 'purchase', userId: 'u-2', target: { type: 'product', id: 'p-1' }, amount: 199, currency: 'CNY' },
          { type: 'dwell', userId: 'u-2', target: { type: 'product', id: 'p-1' } },
          { type: 'click', target: { type: 'product', id: 'p-1' }, tags: ['Bad Tag'] },
        ],
      },
    });
    expect(res.statusCode).toBe(202);
    const body = res.json() as { accepted: number; rejected: { index: number; errors: { path: string }[] }[] };
    expect(body.accepted).toBe(1);
    expect(body.rejected.map((r) => r.index)).toEqual([1, 2]);
    expect(body.rejected[0]!.errors.map((e) => e.path)).toEqual(['dwellMs']);
    expect(body.rejected[1]!.errors.map((e) => e.path).sort()).toEqual(['tags.0', 'userId']);

    const profile = await profileOf('u-2', (p) => p.lifecycle?.stage === 'new');
    expect(profile.stats?.purchases).toBe(1);
  });

  it('the same event id posted twice counts once', async () => {
    const event = { eventId: 'dup-1', type: 'click', anonymousId: 'anon-3', target: { type: 'product', id: 'p-3' } };
    for (let i = 0; i < 2; i++) {
      expect(
        (await ingest.inject({ method: 'POST', url: '/v1/events', headers: auth, payload: event })).statusCode,
      ).toBe(202);
    }
    // A marker event posted after both duplicates: once it is visible, both copies were consumed.
    await ingest.inject({
      method: 'POST',
      url: '/v1/events',
      headers: auth,
      payload: { ...event, eventId: 'marker', target: { type: 'shop', id: 'marker' } },
    });
    const profile = await profileOf(
      'anon-3',
      (p) => (p.stats?.events.click ?? 0) >= 2 && p.interests.some((i) => i.tag === 'shop:marker'),
    );
    expect(profile.stats?.events.click).toBe(2);
    const product = profile.interests.find((i) => i.tag === 'product:p-3')!;
    const marker = profile.interests.find((i) => i.tag === 'shop:marker')!;
    expect(product.score).toBeCloseTo(marker.score, 6);
  });

  it('refuses a missing write key and an unknown profile', async () => {
    const res = await ingest.inject({ method: 'POST', url: '/v1/events', payload: {} });
    expect(res.statusCode).toBe(401);
    const missing = await query.inject({ method: 'GET', url: '/v1/profiles/nobody', headers: bearer });
    expect(missing.statusCode).toBe(404);
    const noToken = await query.inject({ method: 'GET', url: '/v1/profiles/u-1' });
    expect(noToken.statusCode).toBe(401);
  });
});
