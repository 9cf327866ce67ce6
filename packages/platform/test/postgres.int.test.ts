import { closePool, createPool, statementBoundPool, type Pool } from '../src';

describe('createPool and statementBoundPool', () => {
  let pool: Pool;
  beforeAll(() => {
    pool = createPool(process.env.DATABASE_URL!, 'public', 'test-statement-bound', 1);
  });
  afterAll(async () => closePool(pool));

  it('never JIT-compiles, on the base pool and on a bound one', async () => {
    const { rows } = await pool.query<{ jit: string }>(`SELECT current_setting('jit') AS jit`);
    expect(rows[0]!.jit).toBe('off');
  });

  it('gives its connections the statement timeout and the further settings asked for, the base pool neither', async () => {
    const bound = statementBoundPool(pool, 1234, { work_mem: '8MB' });
    try {
      const { rows } = await bound.query<{ timeout: string; jit: string; work_mem: string }>(
        `SELECT current_setting('statement_timeout') AS timeout, current_setting('jit') AS jit, current_setting('work_mem') AS work_mem`,
      );
      expect(rows[0]).toEqual({ timeout: '1234ms', jit: 'off', work_mem: '8MB' });
      const base = await pool.query<{ timeout: string; work_mem: string }>(
        `SELECT current_setting('statement_timeout') AS timeout, current_setting('work_mem') AS work_mem`,
      );
      expect(base.rows[0]!.timeout).not.toBe('1234ms');
      expect(base.rows[0]!.work_mem).not.toBe('8MB');
    } finally {
      await closePool(bound);
    }
  });
});
