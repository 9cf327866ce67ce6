/**
 * `pnpm events:seal -- --from profile.events.v1 --to profile.events.v2 [--check-only]`: rewrites a
 * topic written in clear into its sealed form (platform's seal-topic.ts; docs/privacy.md "Moving an existing
 * deployment"), printing progress, resumable (run it again after a stop), then checks that the
 * copy holds every source record exactly once and exits 1 when it does not.
 */
import { parseArgs } from 'node:util';
import { idsNamedBy, isPlaceholderId } from '@pstream/events';
import {
  checkSealedCopy,
  closePool,
  commonEnv,
  copyIsExact,
  createKafka,
  createKeyring,
  createLogger,
  createPool,
  loadKeyringConfig,
  parseEnv,
  sealTopic,
} from '@pstream/platform';
import { z } from 'zod';

/** The ids a clear message names, as ingest names them for sealing; none for a value that is not a message of ours. */
function names(value: Buffer | null): string[] {
  try {
    const m = JSON.parse(value?.toString('utf8') ?? '') as { profileKey?: unknown };
    if (typeof m.profileKey !== 'string') return [];
    return idsNamedBy(m as Parameters<typeof idsNamedBy>[0]).filter(
      (id) => typeof id === 'string' && !isPlaceholderId(id),
    );
  } catch {
    return [];
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { from: { type: 'string' }, to: { type: 'string' }, 'check-only': { type: 'boolean', default: false } },
  });
  if (!values.from || !values.to || values.from === values.to)
    throw new Error('usage: pnpm events:seal -- --from <clear topic> --to <new sealed topic> [--check-only]');
  const env = parseEnv(
    z.object({
      KAFKA_BROKERS: commonEnv.KAFKA_BROKERS,
      DATABASE_URL: commonEnv.DATABASE_URL,
      PG_SCHEMA: commonEnv.PG_SCHEMA,
      LOG_LEVEL: commonEnv.LOG_LEVEL,
    }),
    process.env,
  );
  const log = createLogger('events-seal', env.LOG_LEVEL);
  const kafka = createKafka({ brokers: env.KAFKA_BROKERS, clientId: 'events-seal', log });
  const pool = createPool(env.DATABASE_URL, env.PG_SCHEMA, 'events-seal', 2);
  try {
    const keyring = createKeyring(loadKeyringConfig(), pool);
    if (!values['check-only']) {
      let last = 0;
      const result = await sealTopic({
        kafka,
        keyring,
        from: values.from,
        to: values.to,
        log,
        names,
        onProgress: ({ done, total }) => {
          if (done === total || Date.now() - last > 2000) {
            last = Date.now();
            console.log(
              `seal ${values.from} → ${values.to}: ${done}/${total} records (${total === 0 ? 100 : Math.floor((100 * done) / total)}%)`,
            );
          }
        },
      });
      console.log(`seal: copied up to the source's end at the start (${result.total} records)`);
    }
    const check = await checkSealedCopy(kafka, keyring, values.from, values.to);
    console.log(`check: ${JSON.stringify(check)}`);
    if (!copyIsExact(check))
      throw new Error(
        'the copy does not hold every source record exactly once (see check); run again to resume, or investigate',
      );
    console.log(
      `check: every one of ${check.source} records is in ${values.to} exactly once, sealed (${check.shredded} of erased people, unreadable)`,
    );
  } finally {
    await closePool(pool);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`events:seal failed: ${(err as Error).message}`);
    process.exit(1);
  },
);
