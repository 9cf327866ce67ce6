import pg from 'pg';
import { pgArray } from '../src/pg-array';

// pgArray must mean to Postgres exactly what node-postgres's own serialisation of the JS array means.
describe('pgArray', () => {
  let pool: pg.Pool;
  beforeAll(() => {
    pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 1 });
  });
  afterAll(() => pool.end());

  const same = async (type: string, values: (string | number | boolean | Date | null)[]) => {
    const { rows } = await pool.query<{ a: unknown; b: unknown }>(
      `SELECT $1::${type}[]::text AS a, $2::${type}[]::text AS b`,
      [pgArray(values), values],
    );
    expect(rows[0]!.a).toBe(rows[0]!.b);
  };

  it('writes what node-postgres writes for a JS array', async () => {
    await same('text', []);
    await same('text', [
      'a',
      '',
      'NULL',
      null,
      'with "quotes"',
      'back\\slash',
      'comma,brace}{',
      ' space ',
      'ünï\u001fcode',
    ]);
    await same('int', [1, 0, -5, null]);
    await same('bigint', [2 ** 40, 3]);
    await same('numeric', [1.5, 0.1, 12345678.9, null]);
    await same('boolean', [true, false, null]);
    await same('timestamptz', ['2026-12-06T09:21:29.123Z', null, new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6))]);
    await same('date', ['2026-12-06']);
  });
});
