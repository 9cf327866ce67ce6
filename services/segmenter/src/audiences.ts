import { ruleSchema, type AudienceEngine } from '@pstream/audiences';
import type { Logger } from '@pstream/platform';
import type { AudienceStore } from '@pstream/profile-store';

/**
 * Keeps saved audiences current (SPEC §5.4): every `intervalMs`, each audience's rule is evaluated
 * at now through the leaf indexes and its stored membership replaced by the result; every entry
 * and exit is written to the audience outbox in the same transaction (profile-store `refresh`)
 * and the relay publishes it on profile.audiences.v1 with its change id. Changes caused by events
 * and by time alone (decay below a threshold, a `did` window sliding, a stage changed by the
 * lifecycle sweep) are therefore all seen within one interval.
 */
export class AudienceSweeper {
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<void> | undefined;
  private stopped = false;
  /** Completed sweeps, for tests and logs. */
  rounds = 0;

  constructor(
    private readonly options: {
      engine: AudienceEngine;
      store: AudienceStore;
      log: Logger;
      intervalMs: number;
      now: () => number;
      onChanges: (n: number) => void;
    },
  ) {}

  start(): void {
    const tick = () => {
      this.current = this.runOnce()
        .then(() => undefined)
        .catch((err: unknown) => this.options.log.warn({ err }, 'audience sweep failed, will retry next interval'))
        .finally(() => {
          this.current = undefined;
          if (!this.stopped) this.timer = setTimeout(tick, this.options.intervalMs);
        });
    };
    this.timer = setTimeout(tick, this.options.intervalMs);
  }

  async runOnce(): Promise<{ audiences: number; entered: number; exited: number }> {
    const { engine, store, log, now } = this.options;
    const started = Date.now();
    let entered = 0;
    let exited = 0;
    const saved = await store.all();
    for (const a of saved) {
      if (this.stopped) break;
      const parsed = ruleSchema.safeParse(a.rule);
      if (!parsed.success) {
        log.error({ audienceId: a.id, issues: parsed.error.issues }, 'stored audience rule no longer valid, skipped');
        continue;
      }
      const nowMs = now();
      const changes = await store.refresh(a.id, await engine.members(parsed.data, nowMs), nowMs);
      entered += changes.entered;
      exited += changes.exited;
    }
    this.rounds += 1;
    if (entered + exited > 0) this.options.onChanges(entered + exited);
    if (saved.length > 0) log.debug({ audiences: saved.length, entered, exited, ms: Date.now() - started }, 'audience sweep done');
    return { audiences: saved.length, entered, exited };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.current;
  }
}
