import type { Logger } from '@pstream/platform';
import type { Pruned, Retention, SegmentStore, Transition } from '@pstream/profile-store';

/**
 * Every `intervalMs`: applies the stage and tier changes that time alone caused (people whose
 * next_review_at has passed), then prunes expired dedupe records and daily aggregates past the
 * retention (docs/operations.md "Retention") and vacuums the queue tables (profile-store's
 * `vacuumQueues`, docs/operations.md "Postgres upkeep"). A change is thus applied within one interval of its
 * threshold. `now` is injectable so tests can move time.
 */
export class Sweeper {
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<void> | undefined;
  private stopped = false;
  /** Completed sweeps, for tests and /metrics. */
  rounds = 0;

  constructor(
    private readonly options: {
      store: SegmentStore;
      log: Logger;
      intervalMs: number;
      batch: number;
      retention: Retention;
      now: () => number;
      onTransitions: (transitions: Transition[]) => void;
      /** After each sweep: people reviewed and seconds taken (for /metrics). */
      onSwept?: (reviewed: number, seconds: number) => void;
      /** After each retention pass: rows removed per table (for /metrics). */
      onPruned?: (pruned: Pruned) => void;
      /** Runs after each round at the same instant, with the round's changes (the audience refresh, audiences.ts). */
      after?: (nowMs: number, transitions: readonly Transition[]) => Promise<unknown>;
    },
  ) {}

  start(): void {
    const tick = () => {
      this.current = this.runOnce()
        .then(() => undefined)
        .catch((err: unknown) => this.options.log.warn({ err }, 'sweep failed, will retry next interval'))
        .finally(() => {
          this.current = undefined;
          if (!this.stopped) this.timer = setTimeout(tick, this.options.intervalMs);
        });
    };
    this.timer = setTimeout(tick, this.options.intervalMs);
  }

  async runOnce(): Promise<{ reviewed: number; changed: number }> {
    const { store, log, batch, now } = this.options;
    const started = Date.now();
    const nowMs = now();
    const { reviewed, transitions } = await store.sweep(nowMs, batch);
    if (transitions.length > 0) this.options.onTransitions(transitions);
    await this.options.after?.(nowMs, transitions);
    const swept = Date.now();
    this.options.onSwept?.(reviewed, (swept - started) / 1000);
    if (reviewed > 0) log.info({ reviewed, changed: transitions.length, ms: swept - started }, 'sweep done');
    const pruned = await store.prune(nowMs, this.options.retention);
    this.options.onPruned?.(pruned);
    if (Object.values(pruned).some((n) => n > 0))
      log.info({ ...pruned, ms: Date.now() - swept }, 'retention: expired rows pruned');
    this.rounds += 1;
    return { reviewed, changed: transitions.length };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.current;
  }
}
