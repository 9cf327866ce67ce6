import { mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { testId } from '@pstream/testkit';
import { migrate, MIGRATIONS_DIR } from '../src';

/**
 * Migration 150 builds four function bodies from the ones before it (`pg_proc.prosrc`) with a string
 * concatenation and a `regexp_replace`: had the pattern stopped matching (a later edit of migration 080's
 * bodies, a different line ending), the migration would still succeed and silently leave the function
 * as it was. Here a schema migrated up to 149 and one up to 150 are compared body by body: each must be
 * exactly the old body with its guard added, in PL/pgSQL, with `jit = off`.
 */
describe('migration 150 (the follow upkeep functions)', () => {
  const before = `test_${testId()}_m149`;
  const after = `test_${testId()}_m150`;
  let pool: pg.Pool;
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

  type Fn = { src: string; lang: string; config: string[] | null };
  async function fn(schema: string, signature: string): Promise<Fn> {
    const { rows } = await pool.query<Fn>(
      `SELECT p.prosrc AS src, l.lanname AS lang, p.proconfig AS config
       FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
       WHERE p.oid = to_regprocedure($1)`,
      [`${schema}.${signature}`],
    );
    if (rows.length !== 1) throw new Error(`${schema}.${signature} not found`);
    return rows[0]!;
  }

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
    await migrate(pool, before, await migrationsUpTo(149));
    await migrate(pool, after, await migrationsUpTo(150));
  });

  afterAll(async () => {
    for (const s of [before, after]) await pool.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
    await pool.end();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('makes follow_daily_move PL/pgSQL: an empty call returns first, then exactly the old statement', async () => {
    const signature = `follow_daily_move(${before}.follow_history[], ${before}.follow_history[])`;
    const old = await fn(before, signature);
    const now = await fn(after, signature.replaceAll(before, after));
    expect(old.lang).toBe('sql');
    expect(now.lang).toBe('plpgsql');
    expect(now.config).toContain('jit=off');
    expect(now.src).toBe(
      '\nBEGIN\n  IF cardinality(removed) = 0 AND cardinality(added) = 0 THEN\n    RETURN;\n  END IF;\n' +
        old.src +
        'END\n',
    );
  });

  it.each([
    ['follows_mix_ins', 'NOT EXISTS (SELECT 1 FROM new_rows WHERE following)'],
    ['follows_mix_del', 'NOT EXISTS (SELECT 1 FROM old_rows WHERE following)'],
    [
      'follows_mix_upd',
      'NOT EXISTS (SELECT 1 FROM old_rows WHERE following) AND NOT EXISTS (SELECT 1 FROM new_rows WHERE following)',
    ],
  ])('gives %s its guard before the old body, which is otherwise unchanged', async (name, guard) => {
    const old = await fn(before, `${name}()`);
    const now = await fn(after, `${name}()`);
    // The pattern migration 150 replaces: the old body must start with it, or nothing was added.
    expect(old.src).toMatch(/^\s*BEGIN\n/);
    expect(now.lang).toBe('plpgsql');
    expect(now.config).toContain('jit=off');
    const rest = old.src.replace(/^\s*BEGIN\n/, '');
    expect(now.src).toBe(`\nBEGIN\n  IF ${guard} THEN\n    RETURN NULL;\n  END IF;\n${rest}`);
  });
});
