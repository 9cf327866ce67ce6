import type { Pool } from '@pstream/platform';

/** One message waiting in an outbox: its row id (a change id), the profile key (Kafka key) and its JSON payload. */
export type OutboxMessage = { id: string; key: string; payload: unknown };

/** The outboxes: lifecycle transitions (profile.lifecycle.v1) and audience entries/exits (profile.audiences.v1). */
export type OutboxTable = 'lifecycle_outbox' | 'audience_outbox';

/**
 * Takes up to `batch` of the oldest outbox rows, hands them to `send`, and deletes them in the
 * same transaction once `send` resolved: a crash after sending and before the commit sends them
 * again (at least once, never lost). One drainer at a time per schema (a transaction-scoped
 * advisory lock), so rows leave in id order, which for one person is the order of their changes.
 * Returns how many rows left; 0 when the outbox is empty or another drainer holds the lock.
 */
export async function drainOutboxOnce(
  pool: Pool,
  schema: string,
  batch: number,
  send: (messages: OutboxMessage[]) => Promise<void>,
  table: OutboxTable = 'lifecycle_outbox',
): Promise<number> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const { rows: lock } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock(hashtext($1)) AS ok', [
      table === 'lifecycle_outbox' ? `pstream-outbox:${schema}` : `pstream-outbox:${schema}:${table}`,
    ]);
    if (!lock[0]?.ok) {
      await client.query('ROLLBACK');
      return 0;
    }
    const { rows } = await client.query<{ id: number; profile_key: string; payload: unknown }>(
      `SELECT id, profile_key, payload FROM ${table} ORDER BY id LIMIT $1`,
      [batch],
    );
    if (rows.length > 0) {
      await send(rows.map((r) => ({ id: String(r.id), key: r.profile_key, payload: r.payload })));
      await client.query(`DELETE FROM ${table} WHERE id = ANY($1::bigint[])`, [rows.map((r) => r.id)]);
    }
    await client.query('COMMIT');
    return rows.length;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** Transitions written to the outbox and not yet sent. */
export async function outboxBacklog(pool: Pool): Promise<number> {
  const { rows } = await pool.query<{ n: string }>('SELECT count(*) AS n FROM lifecycle_outbox');
  return Number(rows[0]?.n ?? 0);
}
