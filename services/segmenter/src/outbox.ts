import type { Logger, Pool } from '@pstream/platform';
import type { Producer } from 'kafkajs';

/**
 * Drains lifecycle_outbox to profile.lifecycle.v1: read the oldest rows, send them with
 * acks=all, delete them, commit. A crash between send and commit sends those rows again, so
 * delivery is at least once, never lossy; `transitionId` lets subscribers drop repeats. One
 * drainer at a time per schema (a transaction-scoped advisory lock), so messages leave in id
 * order, which for one person is the order of their changes.
 */
export class OutboxRelay {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(
    private readonly options: { pool: Pool; producer: Producer; topic: string; schema: string; log: Logger; pollMs: number; batch?: number },
  ) {}

  start(): void {
    const tick = () => {
      this.poke();
      if (!this.stopped) this.timer = setTimeout(tick, this.options.pollMs);
    };
    this.timer = setTimeout(tick, 0);
  }

  /** Drains now (called after a batch recorded transitions); overlapping calls coalesce. */
  poke(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drainAll()
      .then(() => undefined)
      .catch((err: unknown) => this.options.log.warn({ err }, 'lifecycle outbox drain failed, will retry'))
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.poke();
        }
      });
  }

  /** Sends everything in the outbox; resolves with how many messages left. */
  async drainAll(): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.drainOnce();
      total += n;
      if (n === 0 || this.stopped) return total;
    }
  }

  private async drainOnce(): Promise<number> {
    const { pool, producer, topic, schema } = this.options;
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const { rows: lock } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock(hashtext($1)) AS ok', [`pstream-outbox:${schema}`]);
      if (!lock[0]?.ok) {
        await client.query('ROLLBACK');
        return 0;
      }
      const { rows } = await client.query<{ id: number; profile_key: string; payload: unknown }>(
        'SELECT id, profile_key, payload FROM lifecycle_outbox ORDER BY id LIMIT $1',
        [this.options.batch ?? 500],
      );
      if (rows.length > 0) {
        await producer.send({ topic, acks: -1, messages: rows.map((r) => ({ key: r.profile_key, value: JSON.stringify(r.payload) })) });
        await client.query('DELETE FROM lifecycle_outbox WHERE id = ANY($1::bigint[])', [rows.map((r) => r.id)]);
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

  /** Transitions written but not yet sent. */
  async backlog(): Promise<number> {
    const { rows } = await this.options.pool.query<{ n: string }>('SELECT count(*) AS n FROM lifecycle_outbox');
    return Number(rows[0]?.n ?? 0);
  }

  /** Stops polling and waits for a drain in progress; safe to call twice. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}
