import { closeRedis, createLogger, createRedis } from '@pstream/platform';
import { keys, moveTagIndexes } from '@pstream/interest-store';
import { loadConfig } from './config';

/**
 * `pnpm scorer:tag-index-move`: moves the per-tag index of every tag still in one sorted set or in
 * hash buckets into score-range buckets, and rewrites score-range buckets of the version before
 * scaled buckets into scaled ones (interest-store tag-range.ts; docs/operations.md "Moving the
 * per-tag index into score-range buckets"). Each tag moves in one atomic step; scorers of this version may keep
 * running, older ones must be stopped first (they would write unscaled scores into a scaled bucket).
 */
async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger('scorer-tag-index-move', config.LOG_LEVEL);
  const redis = createRedis(config, 'scorer-tag-index-move');
  const started = Date.now();
  try {
    const done = await moveTagIndexes(redis, keys(config.REDIS_PREFIX), (tag, entries) => {
      log.info({ tag, entries }, 'tag moved into scaled score-range buckets');
    });
    log.info({ ...done, seconds: (Date.now() - started) / 1000 }, 'per-tag index move done');
  } finally {
    await closeRedis(redis);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
