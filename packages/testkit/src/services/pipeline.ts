/**
 * End-to-end wiring for tests that drive a real client against ingest and read the profile it
 * made: ingest listening on a free port, with the scorer, the segmenter and the query API wired
 * in-process on a sandbox (as pipeline.int.test.ts does).
 */
import { createMetrics, createPool, createRedis, type Pool, type Redis } from '@pstream/platform';
import type { Profile } from '@pstream/client';
import { migrate } from '@pstream/profile-store';
import { buildApp as buildQuery } from '@pstream/query-api/app';
import { loadConfig as queryConfig } from '@pstream/query-api/config';
import { loadConfig as scorerConfig } from '@pstream/scorer/config';
import { createScorerConsumer } from '@pstream/scorer/processor';
import { loadConfig as segmenterConfig } from '@pstream/segmenter/config';
import { createSegmenter } from '@pstream/segmenter/processor';
import { startIngest } from './ingest';
import { createSandbox, silentLog, waitFor, type Sandbox } from '../index';
import { queryClient } from './query-client';

export type { Profile } from '@pstream/client';

/**
 * Ingest listening on a free port with the scorer, the segmenter and the query API wired
 * in-process on the sandbox (as test/pipeline.int.test.ts does), for tests that drive a real
 * client and read the profile it made. `profile(id, until)` polls the query API until `until` holds.
 */
export async function startPipeline(box: Sandbox, env: NodeJS.ProcessEnv = {}) {
  const closers: (() => Promise<unknown>)[] = [];
  const ingest = await startIngest(box.kafka, { ...box.env, ...env });
  closers.push(() => ingest.close());
  await ingest.app.listen({ host: '127.0.0.1', port: 0 });

  const gCfg = segmenterConfig(box.env);
  const gPool = createPool(gCfg.DATABASE_URL, gCfg.PG_SCHEMA, 'test-segmenter');
  await migrate(gPool, gCfg.PG_SCHEMA);
  closers.push(() => gPool.end());

  // the scorer reads the suppression list of erasures from the same schema
  const sCfg = scorerConfig(box.env);
  const redis = createRedis(sCfg, 'test-scorer');
  const scorer = createScorerConsumer(sCfg, { kafka: box.kafka, redis, pool: gPool, log: silentLog });
  await scorer.start();
  closers.push(
    () => scorer.stop(),
    async () => redis.disconnect(),
  );

  const lifecycleProducer = box.kafka.producer();
  await lifecycleProducer.connect();
  const segmenter = createSegmenter(gCfg, {
    kafka: box.kafka,
    pool: gPool,
    producer: lifecycleProducer,
    log: silentLog,
  });
  await segmenter.start();
  closers.push(
    () => segmenter.stop(),
    () => lifecycleProducer.disconnect(),
  );

  const qCfg = queryConfig(box.env);
  const pool = createPool(qCfg.DATABASE_URL, qCfg.PG_SCHEMA, 'test-query');
  const qRedis = createRedis(qCfg, 'test-query');
  const query = await buildQuery(qCfg, {
    log: silentLog,
    redis: qRedis,
    pool,
    checks: [],
    metrics: createMetrics('query-api'),
  });
  closers.push(
    () => query.close(),
    async () => qRedis.disconnect(),
    () => pool.end(),
  );

  const { port } = ingest.app.server.address() as { port: number };
  const client = queryClient(query);
  return {
    ingest,
    query,
    url: `http://127.0.0.1:${port}`,
    async profile(id: string, until: (p: Profile) => boolean, timeoutMs = 30_000): Promise<Profile> {
      return waitFor(
        `the profile of ${id}`,
        async () => {
          const body = await client.profile(id);
          return until(body) ? body : undefined;
        },
        timeoutMs,
      );
    },
    async close() {
      for (const close of closers.reverse()) await close();
    },
  };
}

/**
 * For a describe block driving a real client: a sandbox and a pipeline started before its tests
 * and removed after them. Read them through the returned object once the tests run.
 */
export function usePipeline(): { box: Sandbox; pipeline: Awaited<ReturnType<typeof startPipeline>> } {
  const state = {} as { box: Sandbox; pipeline: Awaited<ReturnType<typeof startPipeline>> };
  beforeAll(async () => {
    state.box = await createSandbox();
    state.pipeline = await startPipeline(state.box);
  });
  afterAll(async () => {
    await state.pipeline?.close();
    await state.box?.cleanup();
  });
  return state;
}

/**
 * A one-partition sandbox with its schema migrated, and a Postgres pool and Redis client on it, for tests that drive
 * the stores directly.
 */
export type StoreSandbox = { box: Sandbox; pool: Pool; redis: Redis; close(): Promise<void> };

export async function storeSandbox(name: string): Promise<StoreSandbox> {
  const box = await createSandbox(1);
  const pool = createPool(process.env.DATABASE_URL!, box.env.PG_SCHEMA!, name, 2);
  await migrate(pool, box.env.PG_SCHEMA!);
  const redis = createRedis({ REDIS_URL: process.env.REDIS_URL! }, name);
  return {
    box,
    pool,
    redis,
    close: async () => {
      redis.disconnect();
      await pool.end();
      await box.cleanup();
    },
  };
}
