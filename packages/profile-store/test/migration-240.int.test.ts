import { mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { testId } from '@pstream/testkit';
import { migrate, MIGRATIONS_DIR } from '../src';

/**
 * Migration 240 builds the three follower-mix trigger functions of `people` from the ones before it
 * (`pg_proc.prosrc`) with a `regexp_replace`, as migration 150 did for those of `follows`: had the pattern
 * stopped matching, the migration would still succeed and leave the functions as they were. A schema
 * migrated up to 239 and one up to 240 are compared body by body (each exactly the old body with its guard
 * added, PL/pgSQL, `jit = off`), and the guarded triggers still count a follower's change.
 */
describe('migration 240 (the follower-mix triggers of people)', () => {
  const before = `test_${testId()}_m239`;
  const after = `test_${testId()}_m240`;
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
    await migrate(pool, before, await migrationsUpTo(239));
    await migrate(pool, after, await migrationsUpTo(240));
  });

  afterAll(async () => {
    for (const s of [before, after]) await pool.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
    await pool.end();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it.each([
    ['people_mix_ins', 'NOT EXISTS (SELECT 1 FROM new_rows)'],
    ['people_mix_del', 'NOT EXISTS (SELECT 1 FROM old_rows)'],
    ['people_mix_upd', 'NOT EXISTS (SELECT 1 FROM old_rows)'],
  ])('gives %s its guard before the old body, which is otherwise unchanged', async (name, guard) => {
    const old = await fn(before, `${name}()`);
    const now = await fn(after, `${name}()`);
    // The pattern migration 240 replaces: the old body must start with it, or nothing was added.
    expect(old.src).toMatch(/^\s*BEGIN\n/);
    expect(now.lang).toBe('plpgsql');
    expect(now.config).toContain('jit=off');
    const rest = old.src.replace(/^\s*BEGIN\n/, '');
    expect(now.src).toBe(`\nBEGIN\n  IF ${guard} THEN\n    RETURN NULL;\n  END IF;\n${rest}`);
  });

  it('still counts, through an upsert of people who all exist, a follower whose stage changes', async () => {
    const client = await pool.connect();
    try {
      await client.query(`SET search_path TO ${after}, public`);
      await client.query(
        `INSERT INTO people (profile_key, stage, stage_evaluated_at) VALUES ('u-1', 'new', now()), ('u-2', 'new', now())`,
      );
      await client.query(
        `INSERT INTO follows (profile_key, target_type, target_id, following, since, changed_at)
         VALUES ('u-1', 'shop', 's-1', true, now(), now())`,
      );
      const stages = async () =>
        (
          await client.query<{ value: string; n: number }>(
            `SELECT value, n FROM follower_mix WHERE target_id = 's-1' AND facet = 'stage' AND n <> 0 ORDER BY value`,
          )
        ).rows;
      expect(await stages()).toEqual([{ value: 'new', n: 1 }]);
      // Every row exists: the INSERT trigger sees no new rows and returns first, the UPDATE one counts.
      await client.query(
        `INSERT INTO people AS p (profile_key, stage, stage_evaluated_at)
         VALUES ('u-1', 'engaged', now()), ('u-2', 'engaged', now())
         ON CONFLICT (profile_key) DO UPDATE SET stage = excluded.stage`,
      );
      expect(await stages()).toEqual([{ value: 'engaged', n: 1 }]);
    } finally {
      client.release();
    }
  });
});
