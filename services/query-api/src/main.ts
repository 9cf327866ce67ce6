import { closePool, closeRedis, createLogger, createMetrics, createPool, createRedis, handleSignals } from '@pstream/platform';
import { pingPostgres } from '@pstream/profile-store';
import { buildApp } from './app';
import { loadConfig } from './config';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger('query-api', config.LOG_LEVEL);
  const redis = createRedis(config, 'query-api');
  const pool = createPool(config.DATABASE_URL, config.PG_SCHEMA, 'query-api');
  const app = await buildApp(config, {
    log,
    redis,
    pool,
    metrics: createMetrics('query-api'),
    checks: [
      { name: 'redis', check: () => redis.ping() },
      { name: 'postgres', check: () => pingPostgres(pool) },
    ],
  });
  handleSignals(log, async () => {
    await app.close();
    await closeRedis(redis);
    await closePool(pool);
  });
  await app.listen({ host: config.QUERY_API_HOST, port: config.QUERY_API_PORT });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
