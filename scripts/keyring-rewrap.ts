/**
 * `pnpm keyring:rewrap`: master key rotation (docs/privacy.md). Re-wraps every live person key
 * under the first key of KEYRING_MASTER_KEYS, in batches, printing progress; safe to run while
 * the services run and to run again. Once it reports 0 keys left under older master keys, the
 * older keys can be removed from KEYRING_MASTER_KEYS everywhere.
 */
import { closePool, commonEnv, createKeyring, createPool, loadKeyringConfig, parseEnv } from '@pstream/platform';
import { z } from 'zod';

async function main(): Promise<void> {
  const env = parseEnv(z.object({ DATABASE_URL: commonEnv.DATABASE_URL, PG_SCHEMA: commonEnv.PG_SCHEMA }), process.env);
  const config = loadKeyringConfig();
  const pool = createPool(env.DATABASE_URL, env.PG_SCHEMA, 'keyring-rewrap', 1);
  try {
    const keyring = createKeyring(config, pool);
    let total = 0;
    for (let n = await keyring.rewrap(pool); n > 0; n = await keyring.rewrap(pool)) {
      total += n;
      console.log(`rewrap: ${total} keys re-wrapped under "${config.KEYRING_MASTER_KEYS.active.id}"`);
    }
    const { rows } = await pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM person_keys WHERE wrapped IS NOT NULL AND master_id <> $1',
      [config.KEYRING_MASTER_KEYS.active.id],
    );
    console.log(`rewrap: done, ${total} re-wrapped; ${rows[0]!.n} keys left under older master keys`);
  } finally {
    await closePool(pool);
  }
}

main().catch((err: unknown) => {
  console.error(`rewrap failed: ${(err as Error).message}`);
  process.exit(1);
});
