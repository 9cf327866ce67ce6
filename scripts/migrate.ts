/**
 * Applies the Postgres migrations of packages/profile-store to DATABASE_URL / PG_SCHEMA.
 * Run by `pnpm infra:up` and `pnpm migrate`; the segmenter also runs them at start.
 */
import { closePool, commonEnv, createPool, parseEnv } from '@pstream/platform';
import { migrate } from '@pstream/profile-store';
import { z } from 'zod';

async function main(): Promise<void> {
  const env = parseEnv(z.object({ DATABASE_URL: commonEnv.DATABASE_URL, PG_SCHEMA: commonEnv.PG_SCHEMA }), process.env);
  const pool = createPool(env.DATABASE_URL, env.PG_SCHEMA, 'migrate', 1);
  try {
    const applied = await migrate(pool, env.PG_SCHEMA);
    console.log(applied.length > 0 ? `migrations: applied ${applied.join(', ')}` : 'migrations: up to date');
  } finally {
    await closePool(pool);
  }
}

main().catch((err: unknown) => {
  console.error(`migrations failed: ${(err as Error).message}`);
  process.exit(1);
});
