import { ruleSchema, type AudienceEngine } from '@pstream/audiences';
import type { Logger } from '@pstream/platform';
import type { AudienceStore } from '@pstream/profile-store';

/**
 * Keeps saved audiences current (docs/api.md §5.4). Run by the sweep after each lifecycle round (so stage
 * changes caused by time are already stored): each audience's rule is evaluated at that instant
 * through the leaf indexes and its stored membership replaced by the result; every entry and exit
 * is written to the audience outbox in the same transaction (profile-store `refresh`) and the
 * relay publishes it on profile.audiences.v1 with its change id. Changes caused by events and by
 * time alone (decay below a threshold, a `did` window sliding, a stage moved by the sweep) are
 * therefore all seen within one sweep interval.
 */
export function createAudienceRefresher(options: { engine: AudienceEngine; store: AudienceStore; log: Logger; onChanges: (n: number) => void }) {
  const { engine, store, log } = options;
  return async (nowMs: number): Promise<{ audiences: number; entered: number; exited: number }> => {
    const started = Date.now();
    let entered = 0;
    let exited = 0;
    const saved = await store.all();
    for (const a of saved) {
      const parsed = ruleSchema.safeParse(a.rule);
      if (!parsed.success) {
        log.error({ audienceId: a.id, issues: parsed.error.issues }, 'stored audience rule no longer valid, skipped');
        continue;
      }
      const changes = await store.refresh(a.id, await engine.members(parsed.data, nowMs), nowMs);
      entered += changes.entered;
      exited += changes.exited;
    }
    if (entered + exited > 0) options.onChanges(entered + exited);
    if (saved.length > 0) log.debug({ audiences: saved.length, entered, exited, ms: Date.now() - started }, 'audiences refreshed');
    return { audiences: saved.length, entered, exited };
  };
}
