import { closePool, createPool, statementBoundPool, type Pool } from '../src';

describe('statementBoundPool', () => {
  let pool: Pool;
  beforeAll(() => {
    pool = createPool(process.env.DATABASE_URL!, 'public', 'test-statement-bound', 1);
  });
  afterAll(async () => closePool(pool));

  it('gives its connections the statement timeout and the further settings asked for, the base pool neither', async () => {
    const bound = statementBoundPool(pool, 1234, { jit: 'off' });
    try {
      const { rows } = await bound.query<{ timeout: string; jit: string }>(
        `SELECT current_setting('statement_timeout') AS timeout, current_setting('jit') AS jit`,
      );
      expect(rows[0]).toEqual({ timeout: '1234ms', jit: 'off' });
      const base = await pool.query<{ timeout: string }>(`SELECT current_setting('statement_timeout') AS timeout`);
      expect(base.rows[0]!.timeout).not.toBe('1234ms');
    } finally {
      await closePool(bound);
    }
  });
});
