import type { Logger, Pool } from '@pstream/platform';
import { drainOutboxOnce, outboxBacklog } from '@pstream/profile-store';
import type { Producer } from 'kafkajs';

/**
 * Drains the lifecycle outbox to profile.lifecycle.v1 with acks=all, on a poll timer and
 * whenever a batch recorded transitions. The transaction is profile-store's `drainOutboxOnce`:
 * delivery is at least once, never lossy; `transitionId` lets subscribers drop repeats.
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

  private drainOnce(): Promise<number> {
    const { pool, producer, topic, schema } = this.options;
    return drainOutboxOnce(pool, schema, this.options.batch ?? 500, async (messages) => {
      await producer.send({ topic, acks: -1, messages: messages.map((m) => ({ key: m.key, value: JSON.stringify(m.payload) })) });
    });
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
