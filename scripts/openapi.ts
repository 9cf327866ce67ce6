/**
 * Writes the OpenAPI documents of ingest and the query API to `.data/openapi/` (or the folder
 * given as the first argument), generated from the routes exactly as `/openapi.json` serves
 * them. `pnpm test` lints them with `@redocly/cli lint` (redocly.yaml).
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { buildApp as buildIngest } from '@pstream/ingest/app';
import { loadConfig as ingestConfig } from '@pstream/ingest/config';
import { KafkaPublisher } from '@pstream/ingest/publisher';
import {
  closePool,
  closeRedis,
  createKafka,
  createLogger,
  createMetrics,
  createPool,
  createRedis,
} from '@pstream/platform';
import { buildApp as buildQuery } from '@pstream/query-api/app';
import { loadConfig as queryConfig } from '@pstream/query-api/config';

async function main(): Promise<void> {
  // The same defaults as `pnpm start`; variables already set win.
  const envFile = ['.env', '.env.example'].find((f) => existsSync(f));
  if (envFile) process.loadEnvFile(envFile);
  const out = path.resolve(process.argv[2] ?? '.data/openapi');
  await mkdir(out, { recursive: true });
  const log = createLogger('openapi', 'warn');

  const ic = ingestConfig();
  // Never started: documents are generated from the routes, nothing is published.
  const publisher = new KafkaPublisher({
    kafka: createKafka({ brokers: ic.KAFKA_BROKERS, clientId: 'openapi', log }),
    topic: ic.EVENTS_TOPIC,
    log,
    timeoutMs: 1000,
    breakerMs: 1000,
  });
  const ingest = await buildIngest(ic, { log, publisher, checks: [], metrics: createMetrics('ingest') });

  const qc = queryConfig();
  const redis = createRedis(qc, 'openapi');
  const pool = createPool(qc.DATABASE_URL, qc.PG_SCHEMA, 'openapi', 1);
  const query = await buildQuery(qc, { log, redis, pool, checks: [], metrics: createMetrics('query-api') });

  for (const [name, app] of [
    ['ingest', ingest],
    ['query-api', query],
  ] as const) {
    const served = await app.inject({ method: 'GET', url: '/openapi.json' });
    if (served.statusCode !== 200) throw new Error(`${name}: GET /openapi.json answered ${served.statusCode}`);
    const file = path.join(out, `${name}.json`);
    await writeFile(file, `${JSON.stringify(served.json(), null, 2)}\n`);
    console.log(`openapi: ${file}`);
    await app.close();
  }
  await closeRedis(redis);
  await closePool(pool);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
