import type { Keyring, Logger, Pool } from '@pstream/platform';
import { drainOutboxOnce, outboxBacklog, type OutboxTable } from '@pstream/profile-store';
import type { Producer } from 'kafkajs';

/**
 * Drains an outbox to its topic with acks=all, on a poll timer and whenever a batch recorded
 * changes: the lifecycle outbox to profile.lifecycle.v1, the audience outbox to
 * profile.audiences.v1. The transaction is profile-store's `drainOutboxOnce`: delivery is at
 * least once, never lossy; `transitionId` / `changeId` let subscribers drop repeats.
 */
export class OutboxRelay {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(
    private readonly options: {
      /** Seals each message for the person it names (docs/privacy.md: derived topics). */
      keyring: Pick<Keyring, 'seal'>;
      pool: Pool;
      producer: Producer;
      topic: string;
      schema: string;
      log: Logger;
      pollMs: number;
      batch?: number;
      /** Which outbox (default: lifecycle). */
      table?: OutboxTable;
      /** When set, the row id is added to each payload under this name (the change id consumers dedupe by). */
      idField?: string;
    },
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

  private drainOnce(): Promise<number> {
    const { pool, producer, topic, schema, idField } = this.options;
    const payload = (m: { id: string; payload: unknown }) =>
      idField === undefined ? m.payload : { ...(m.payload as object), [idField]: m.id };
    return drainOutboxOnce(
      pool,
      schema,
      this.options.batch ?? 500,
      async (messages) => {
        await producer.send({
          topic,
          acks: -1,
          messages: await this.options.keyring.seal(
            messages.map((m) => ({ key: m.key, value: JSON.stringify(payload(m)) })),
          ),
        });
      },
      this.options.table,
    );
  }

  /** Transitions written but not yet sent. */
  async backlog(): Promise<number> {
    return outboxBacklog(this.options.pool);
  }

  /** Stops polling and waits for a drain in progress; safe to call twice. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}
