import {
  closePool,
  closeRedis,
  createKafka,
  createLogger,
  createMetrics,
  createPool,
  createRedis,
  handleSignals,
} from '@pstream/platform';
import { FACTS_CONNECTIONS, FACTS_SESSION_SETTINGS, pingPostgres, prewarm } from '@pstream/profile-store';
import { buildApp } from './app';
import { loadConfig } from './config';
import { LagSampler } from './lag/sampler';
import { createModelTrainer } from './models/trainer';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger('query-api', config.LOG_LEVEL);
  const redis = createRedis(config, 'query-api');
  const pool = createPool(config.DATABASE_URL, config.PG_SCHEMA, 'query-api');
  // The profile reader's own connections, never closed while idle, running the facts statement's
  // generic plan rather than planning it again for every read (BENCHMARKS.md "Reads")
  const readPool = createPool(
    config.DATABASE_URL,
    config.PG_SCHEMA,
    'query-api',
    FACTS_CONNECTIONS,
    FACTS_CONNECTIONS,
    FACTS_SESSION_SETTINGS,
  );
  const metrics = createMetrics('query-api');
  const lag = new LagSampler({
    kafka: createKafka({ brokers: config.KAFKA_BROKERS, clientId: 'query-api', log }),
    log: log.child({ component: 'lag' }),
    groups: config.LAG_GROUPS,
    dlqTopic: config.DLQ_TOPIC,
    intervalMs: config.LAG_SAMPLE_INTERVAL_MS,
    window: config.LAG_WINDOW,
    metrics,
  });
  const app = await buildApp(config, {
    log,
    redis,
    pool,
    readPool,
    metrics,
    lag,
    checks: [
      { name: 'redis', check: () => redis.ping() },
      { name: 'postgres', check: () => pingPostgres(pool) },
    ],
  });
  const trainer = config.MODEL_TRAINING ? createModelTrainer(config, { pool, redis, log, metrics }) : undefined;
  // stops the start-up prewarm between two of its steps, so the pool closes without waiting for it
  const prewarming = new AbortController();
  handleSignals(log, async () => {
    prewarming.abort();
    await app.close();
    await trainer?.stop();
    await lag.stop();
    await closeRedis(redis);
    await closePool(pool);
    await closePool(readPool);
  });
  lag.start();
  trainer?.start();
  await app.listen({ host: config.QUERY_API_HOST, port: config.QUERY_API_PORT });
  // the hot relations' pages read before requests need them (docs/operations.md "Prewarming"), in the background:
  // requests are answered meanwhile, their first reads of pages competing with the prewarm's for the disk
  if (config.PG_PREWARM.size > 0) {
    const started = performance.now();
    prewarm(pool, config.PG_PREWARM, { signal: prewarming.signal }).then(
      (done) => {
        if (done === null)
          log.warn('pg_prewarm is not installed (migration 210): the first reads of pages come from disk');
        else if (done.some((d) => d.error)) log.warn({ relations: done }, 'prewarm failed for some relations');
        else log.info({ relations: done, ms: Math.round(performance.now() - started) }, 'prewarmed');
      },
      (err: unknown) => log.warn({ err }, 'prewarm failed: the first reads of pages come from disk'),
    );
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
