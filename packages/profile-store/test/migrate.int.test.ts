import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { testId } from '@pstream/testkit';
import { migrate } from '../src';

describe('migrate', () => {
  const schema = `test_${testId()}`;
  let pool: pg.Pool;
  let dir: string;

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 4 });
    dir = await mkdtemp(path.join(os.tmpdir(), 'migrations-'));
    await writeFile(path.join(dir, '001_a.sql'), 'CREATE TABLE a (id int PRIMARY KEY);');
  });

  afterAll(async () => {
    await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await pool.end();
    await rm(dir, { recursive: true, force: true });
  });

  it('applies each migration once, even when several starters race', async () => {
    const results = await Promise.all([
      migrate(pool, schema, dir),
      migrate(pool, schema, dir),
      migrate(pool, schema, dir),
    ]);
    expect(results.flat()).toEqual(['001_a']);
    expect(await migrate(pool, schema, dir)).toEqual([]);
  });

  it('rolls a failing migration back whole and names it', async () => {
    await writeFile(path.join(dir, '002_bad.sql'), 'CREATE TABLE b (id int); SELECT * FROM missing_table;');
    await expect(migrate(pool, schema, dir)).rejects.toThrow(/002_bad\.sql failed: .*missing_table/);
    const { rows } = await pool.query(`SELECT to_regclass('${schema}.b') AS t`);
    expect(rows[0].t).toBeNull();
  });
});
