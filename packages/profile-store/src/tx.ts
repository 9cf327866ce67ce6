import type { Logger, Pool, PoolClient } from '@pstream/platform';
import { dbUnavailable, isTransient } from './errors';

export type RetryOptions = { log: Logger; deadlineMs?: number; isStopping?: () => boolean };

/**
 * Runs `fn` in one transaction, retrying the whole transaction on transient failures
 * (deadlock, Postgres restarting or unreachable) with capped backoff until `deadlineMs`.
 * A retry is safe because nothing of a failed attempt was committed.
 */
export async function inTransaction<T>(
  pool: Pool,
  fn: (client: PoolClient) => Promise<T>,
  options: RetryOptions,
): Promise<T> {
  const deadline = Date.now() + (options.deadlineMs ?? 25_000);
  for (let attempt = 0; ; attempt++) {
    let client: PoolClient | undefined;
    try {
      client = await pool.connect();
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      client.release();
      return result;
    } catch (err) {
      if (client) {
        await client.query('ROLLBACK').catch(() => undefined);
        // a broken connection must not go back to the pool
        client.release(isTransient(err) ? (err as Error) : undefined);
      }
      if (!isTransient(err)) throw err;
      if (Date.now() > deadline || options.isStopping?.()) throw dbUnavailable(err);
      const waitMs = Math.min(2000, 50 * 2 ** attempt);
      options.log.warn(
        { err: (err as Error).message, attempt, waitMs },
        'transient Postgres failure, retrying transaction',
      );
      await new Promise((r) => setTimeout(r, waitMs));
    }
  }
}
