import { buildApp as buildIngest } from '@pstream/ingest/app';
import { loadConfig as ingestConfig } from '@pstream/ingest/config';
import { KafkaPublisher } from '@pstream/ingest/publisher';
import { createMetrics, createPool, createRedis, type Registry } from '@pstream/platform';
import { migrate } from '@pstream/profile-store';
import { buildApp as buildQuery } from '@pstream/query-api/app';
import { loadConfig as queryConfig } from '@pstream/query-api/config';
import { LagSampler } from '@pstream/query-api/lag';
import { buildApp as buildScorerOps } from '@pstream/scorer/app';
import { buildApp as buildSegmenterOps } from '@pstream/segmenter/app';
import { loadConfig as scorerConfig } from '@pstream/scorer/config';
import { createScorerConsumer } from '@pstream/scorer/processor';
import { loadConfig as segmenterConfig } from '@pstream/segmenter/config';
import { createSegmenter } from '@pstream/segmenter/processor';
import type { FastifyInstance } from 'fastify';
import {
  createSandbox,
  metricSample as sample,
  promtool,
  promtoolUnavailable,
  type Sandbox,
  silentLog,
  waitFor,
} from '@pstream/testkit';

const skip = promtoolUnavailable();
if (skip) console.warn(`metrics test skipped: ${skip}`);
const describeWithPromtool = skip ? describe.skip : describe;

/*
 * Every service's /metrics, after real work against real servers, is valid Prometheus text that
 * `promtool check metrics` accepts (names, types, units, no `_total` on gauges), and carries the
 * application metrics the issue lists.
 */
describeWithPromtool('/metrics of the four services', () => {
  let box: Sandbox;
  let ingest: FastifyInstance;
  let query: FastifyInstance;
  let scorerApp: FastifyInstance;
  let segmenterApp: FastifyInstance;
  const registries: Record<string, Registry> = {};
  const closers: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    box = await createSandbox(2);
    const env: NodeJS.ProcessEnv = { ...box.env, SEGMENTER_SWEEP_INTERVAL_MS: '200' };
    for (const name of ['ingest', 'scorer', 'segmenter', 'query-api']) registries[name] = createMetrics(name);

    const iCfg = ingestConfig(env);
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
      checks: [{ name: 'kafka', check: () => publisher.check() }],
      metrics: registries.ingest!,
    });

    const gCfg = segmenterConfig(env);
    const pool = createPool(gCfg.DATABASE_URL, gCfg.PG_SCHEMA, 'test-metrics');
    await migrate(pool, gCfg.PG_SCHEMA);
    closers.push(() => pool.end());

    // the scorer reads the suppression list of erasures from the same schema
    const sCfg = scorerConfig(env);
    const redis = createRedis(sCfg, 'test-metrics');
    const scorer = createScorerConsumer(sCfg, {
      kafka: box.kafka,
      redis,
      pool,
      log: silentLog,
      metrics: registries.scorer!,
    });
    await scorer.start();
    closers.push(
      () => scorer.stop(),
      async () => redis.disconnect(),
    );
    scorerApp = await buildScorerOps({ log: silentLog, checks: [], metrics: registries.scorer! });

    const producer = box.kafka.producer();
    await producer.connect();
    const segmenter = createSegmenter(gCfg, {
      kafka: box.kafka,
      pool,
      producer,
      log: silentLog,
      metrics: registries.segmenter!,
    });
    await segmenter.start();
    closers.push(
      () => segmenter.stop(),
      () => producer.disconnect(),
    );
    segmenterApp = await buildSegmenterOps({ log: silentLog, checks: [], metrics: registries.segmenter! });

    const qCfg = queryConfig(env);
    const sampler = new LagSampler({
      kafka: box.kafka,
      log: silentLog,
      groups: [env.SCORER_GROUP!, env.SEGMENTER_GROUP!],
      dlqTopic: env.DLQ_TOPIC!,
      intervalMs: 300,
      window: 5,
      metrics: registries['query-api']!,
    });
    sampler.start();
    const qRedis = createRedis(qCfg, 'test-metrics-query');
    query = await buildQuery(qCfg, {
      log: silentLog,
      redis: qRedis,
      pool,
      checks: [],
      metrics: registries['query-api']!,
      lag: sampler,
    });
    closers.push(
      () => query.close(),
      () => sampler.stop(),
      async () => qRedis.disconnect(),
    );
  }, 90_000);

  afterAll(async () => {
    await ingest?.close();
    await scorerApp?.close();
    await segmenterApp?.close();
    for (const close of closers.reverse()) await close();
    await box?.cleanup();
  }, 60_000);

  const scrape = async (app: FastifyInstance) => {
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    return res.body;
  };
  const checked = async (text: string) => {
    const { code, output } = await promtool(['check', 'metrics'], text);
    expect({ code, output }).toEqual({ code: 0, output: '' });
  };

  it('ingest: requests by route and status, events accepted and rejected by reason, produce latency, breaker', async () => {
    const post = (body: unknown) =>
      ingest.inject({
        method: 'POST',
        url: '/v1/events',
        headers: { 'x-write-key': 'dev-write-key' },
        payload: body as object,
      });
    expect(
      (
        await post({
          events: [{ type: 'click', userId: 'm-1', target: { type: 'product', id: 'p-1' } }, { type: 'nope' }],
        })
      ).statusCode,
    ).toBe(202);
    expect((await post({ type: 'follow', anonymousId: 'a-1', target: { type: 'shop', id: 's-1' } })).statusCode).toBe(
      202,
    );
    const text = await scrape(ingest);
    await checked(text);
    expect(sample(text, 'http_requests_total', { route: '/v1/events', method: 'POST', status: '202' })).toBe(2);
    expect(sample(text, 'ingest_events_accepted_total', { source: 'demo' })).toBe(2);
    expect(sample(text, 'ingest_events_rejected_total', { source: 'demo', reason: 'invalid' })).toBe(1);
    expect(sample(text, 'ingest_produce_duration_seconds_count', { outcome: 'ok' })).toBe(2);
    expect(sample(text, 'ingest_kafka_breaker_open')).toBe(0);
    expect(sample(text, 'readiness_check', { check: 'kafka' })).toBe(1);
    expect(text).not.toMatch(/nodejs_active_handles_total/);
  });

  it('scorer and segmenter: processed, applied, duplicates, DLQ by reason, apply latency, lag, stalled; segmenter transitions, sweep, outbox', async () => {
    const raw = box.kafka.producer();
    await raw.connect();
    await raw.send({ topic: box.env.EVENTS_TOPIC!, messages: [{ key: 'x', value: 'not json' }] });
    await raw.disconnect();
    const labels = (group: string) => ({ group, topic: box.env.EVENTS_TOPIC! });
    for (const [name, app, group] of [
      ['scorer', scorerApp, box.env.SCORER_GROUP!],
      ['segmenter', segmenterApp, box.env.SEGMENTER_GROUP!],
    ] as const) {
      const text = await waitFor(`${name} to handle all 3 messages`, async () => {
        const t = await scrape(app);
        return sample(t, 'consumer_messages_processed_total', labels(group)) === 3 &&
          sample(t, 'consumer_stalled_partitions', labels(group)) !== undefined
          ? t
          : undefined;
      });
      await checked(text);
      expect(sample(text, 'consumer_messages_applied_total', labels(group))).toBe(2);
      expect(sample(text, 'consumer_dead_letters_total', { ...labels(group), reason: 'not_json' })).toBe(1);
      expect(sample(text, 'consumer_batch_apply_seconds_count', labels(group))).toBeGreaterThan(0);
      expect(sample(text, 'consumer_message_age_at_pickup_seconds_count', labels(group))).toBeGreaterThan(0);
      expect(sample(text, 'consumer_message_age_at_done_seconds_count', labels(group))).toBeGreaterThan(0);
      expect(sample(text, 'consumer_partition_lag', labels(group))).toBe(0);
      expect(sample(text, 'consumer_stalled_partitions', labels(group))).toBe(0);
      expect(text).toMatch(/^# TYPE consumer_duplicates_total counter$/m);
    }
    const text = await waitFor('a segmenter sweep', async () => {
      const t = await scrape(segmenterApp);
      return (sample(t, 'segmenter_sweep_duration_seconds_count') ?? 0) > 0 ? t : undefined;
    });
    await checked(text);
    expect(sample(text, 'segmenter_transitions_total', { from: 'none', to: 'potential' })).toBe(2);
    expect(sample(text, 'segmenter_sweep_people_reviewed_total')).toBeGreaterThanOrEqual(0);
    expect(sample(text, 'segmenter_outbox_backlog')).toBeGreaterThanOrEqual(0);
  }, 60_000);

  it('query-api: request latency by route and status, and the lag sampler’s gauges', async () => {
    expect(
      (
        await query.inject({
          method: 'GET',
          url: '/v1/profiles/nobody-here',
          headers: { authorization: 'Bearer dev-api-token' },
        })
      ).statusCode,
    ).toBe(404);
    const text = await waitFor('lag gauges for both groups', async () => {
      const t = await scrape(query);
      return sample(t, 'ops_lag_messages', { group: box.env.SCORER_GROUP! }) !== undefined &&
        sample(t, 'ops_lag_messages', { group: box.env.SEGMENTER_GROUP! }) !== undefined
        ? t
        : undefined;
    });
    await checked(text);
    expect(
      sample(text, 'http_request_duration_seconds_count', { route: '/v1/profiles/:id', method: 'GET', status: '404' }),
    ).toBe(1);
    expect(sample(text, 'ops_lag_stalled_partitions', { group: box.env.SCORER_GROUP! })).toBe(0);
    expect(sample(text, 'ops_lag_last_sample_timestamp_seconds')).toBeGreaterThan(0);
  }, 60_000);
});
