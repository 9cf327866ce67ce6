import pg from 'pg';
import { classifySegmenterFailure } from '../src/errors';

/** Real Postgres errors, sorted the way the batch consumer acts on them. */
describe('classifySegmenterFailure', () => {
  const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 1 });
  afterAll(() => pool.end());
  const errorOf = async (p: Promise<unknown>) =>
    p.then(
      () => undefined,
      (err: unknown) => err,
    );

  it.each([
    ['a NUL in text, which Postgres cannot hold', "SELECT convert_from('\\x6100'::bytea, 'UTF8')"],
    ['a NUL escape in jsonb (22P05, the error of the issue)', 'SELECT \'"probe\\u0000nul"\'::jsonb'],
    ['division by zero (22012)', 'SELECT 1 / 0'],
    ['a value out of range (22003)', 'SELECT 2147483647::int + 1'],
  ])('treats %s as poison', async (_name, sql) => {
    const err = await errorOf(pool.query(sql));
    expect(err).toBeDefined();
    expect((err as { code: string }).code).toMatch(/^(22|23|54)/);
    expect(classifySegmenterFailure(err)).toBe('poison');
  });

  it('treats a constraint violation (23514) as poison', async () => {
    const client = await pool.connect();
    try {
      await client.query('CREATE TEMP TABLE t (n int CHECK (n <> 13))');
      const err = await errorOf(client.query('INSERT INTO t VALUES (13)'));
      expect((err as { code: string }).code).toBe('23514');
      expect(classifySegmenterFailure(err)).toBe('poison');
    } finally {
      client.release(true);
    }
  });

  it('treats a refused connection and a deadlock as transient', async () => {
    const closed = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:1/profiles' });
    const refused = await errorOf(closed.connect());
    expect((refused as { code: string }).code).toBe('ECONNREFUSED');
    expect(classifySegmenterFailure(refused)).toBe('transient');
    expect(classifySegmenterFailure(Object.assign(new Error('deadlock detected'), { code: '40P01' }))).toBe(
      'transient',
    );
    expect(classifySegmenterFailure(new Error('something we did not foresee'))).toBe('transient');
  });
});
