import { mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { testId } from '@pstream/testkit';
import { migrate, MIGRATIONS_DIR } from '../src';

/** A function's stored body, language and settings. */
export type Fn = { src: string; lang: string; config: string[] | null };

/**
 * For the tests of a migration that rewrites functions from their old bodies (`pg_proc.prosrc`): registers
 * the `beforeAll`/`afterAll` of two schemas, one migrated up to `first`, one up to `second`, and gives the
 * bodies of their functions. Called inside a `describe`.
 */
export function migratedPair(
  first: number,
  second: number,
): {
  before: string;
  after: string;
  pool: () => pg.Pool;
  fn: (schema: string, signature: string) => Promise<Fn>;
  expectGuarded: (name: string, guard: string) => Promise<void>;
} {
  const before = `test_${testId()}_m${first}`;
  const after = `test_${testId()}_m${second}`;
  let pool: pg.Pool | undefined;
  const dirs: string[] = [];

  /** A directory with the package's migrations up to `last` (links to the files). */
  async function migrationsUpTo(last: number): Promise<string> {
    const dir = await mkdtemp(path.join(os.tmpdir(), `migrations-${last}-`));
    dirs.push(dir);
    for (const f of await readdir(MIGRATIONS_DIR))
      if (/^\d+_/.test(f) && Number(f.split('_')[0]) <= last)
        await symlink(path.join(MIGRATIONS_DIR, f), path.join(dir, f));
    return dir;
  }

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
    await migrate(pool, before, await migrationsUpTo(first));
    await migrate(pool, after, await migrationsUpTo(second));
  });

  afterAll(async () => {
    for (const s of [before, after]) await pool?.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
    await pool?.end();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  const get = (): pg.Pool => {
    if (!pool) throw new Error('migratedPair: used before its beforeAll ran');
    return pool;
  };
  async function fn(schema: string, signature: string): Promise<Fn> {
    const { rows } = await get().query<Fn>(
      `SELECT p.prosrc AS src, l.lanname AS lang, p.proconfig AS config
         FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
         WHERE p.oid = to_regprocedure($1)`,
      [`${schema}.${signature}`],
    );
    if (rows.length !== 1) throw new Error(`${schema}.${signature} not found`);
    return rows[0]!;
  }
  /**
   * Trigger function `name` (no arguments) after the migration: exactly its old body with `IF guard THEN
   * RETURN NULL; END IF;` first, PL/pgSQL, `jit = off`. The old body must start with the `BEGIN` line the
   * migration's `regexp_replace` matches, or nothing was added.
   */
  async function expectGuarded(name: string, guard: string): Promise<void> {
    const old = await fn(before, `${name}()`);
    const now = await fn(after, `${name}()`);
    expect(old.src).toMatch(/^\s*BEGIN\n/);
    expect(now.lang).toBe('plpgsql');
    expect(now.config).toContain('jit=off');
    const rest = old.src.replace(/^\s*BEGIN\n/, '');
    expect(now.src).toBe(`\nBEGIN\n  IF ${guard} THEN\n    RETURN NULL;\n  END IF;\n${rest}`);
  }
  return { before, after, pool: get, fn, expectGuarded };
}
