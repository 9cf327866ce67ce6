import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Pool } from '@pstream/platform';
import { AppError, PlatformErrors } from '@pstream/platform';

/** Where the versioned SQL migrations live: this package's migrations/NNN_name.sql. */
export const MIGRATIONS_DIR = path.resolve(__dirname, '../migrations');

/**
 * Applies the migrations not yet recorded in `<schema>.schema_migrations`, in file-name order,
 * each in its own transaction. An advisory lock makes concurrent starters (several segmenters,
 * `infra:up`) take turns, so a migration runs exactly once. Returns the versions applied now.
 */
export async function migrate(pool: Pool, schema: string, dir = MIGRATIONS_DIR): Promise<string[]> {
  const files = (await readdir(dir)).filter((f) => /^\d+_[a-z0-9_]+\.sql$/.test(f)).sort();
  const client = await pool.connect();
  const applied: string[] = [];
  try {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [`pstream-migrate:${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await client.query(`SET search_path TO ${schema}, public`);
    await client.query(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const done = new Set(
      (await client.query<{ version: string }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version),
    );
    for (const file of files) {
      const version = file.replace(/\.sql$/, '');
      if (done.has(version)) continue;
      const sql = await readFile(path.join(dir, file), 'utf8');
      try {
        await client.query('BEGIN');
        await client.query(sql);
        await client.query('INSERT INTO schema_migrations (version) VALUES ($1)', [version]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw new AppError(PlatformErrors.MIGRATION_FAILED, `migration ${file} failed: ${(err as Error).message}`, {
          cause: err,
        });
      }
      applied.push(version);
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock(hashtext($1))', [`pstream-migrate:${schema}`]).catch(() => undefined);
    client.release();
  }
  return applied;
}
