import { readsLifecycle, ruleSchema, type AudienceEngine, type Rule } from '@pstream/audiences';
import type { Logger } from '@pstream/platform';
import type { AudienceStore, Transition } from '@pstream/profile-store';

export type AudienceRefreshOptions = {
  engine: AudienceEngine;
  store: AudienceStore;
  log: Logger;
  onChanges: (n: number) => void;
  /** Due memberships re-checked at most per round. */
  dueBatch: number;
  /** How long people named by applied messages stay re-checked. */
  touchGraceMs: number;
  /** Age of the last full evaluation after which an audience is evaluated whole again (0: never). */
  fullEveryMs: number;
};

/**
 * Keeps saved audiences current (docs/api.md §5.4). Run by the sweep after each lifecycle round, at
 * the same instant, so its cost follows the people whose membership may have changed — not the
 * audience's size. Per audience, the people re-checked are:
 *   - those whose stored next instant of change by time alone has come (audience_watch: an
 *     interest decaying below a threshold, a `did` window sliding; watch.ts in @pstream/audiences);
 *   - those named by messages applied in the last `touchGraceMs` (events, identify, alias);
 *   - for rules that read stage or tiers, those the lifecycle round just changed by time.
 * Each is evaluated through the leaf indexes restricted to those people; entries and exits go to
 * the audience outbox with their new next instants in one transaction (profile-store `refresh`),
 * and the relay publishes them on profile.audiences.v1 with a change id. An audience never
 * evaluated whole since it was saved (or migrated), or not for `fullEveryMs`, is evaluated whole.
 */
export function createAudienceRefresher(options: AudienceRefreshOptions) {
  const { engine, store, log } = options;
  return async (
    nowMs: number,
    transitions: readonly Transition[] = [],
  ): Promise<{ audiences: number; checked: number; entered: number; exited: number }> => {
    const started = Date.now();
    let entered = 0;
    let exited = 0;
    let checked = 0;
    const saved = await store.all();
    const due = await store.due(nowMs, options.dueBatch);
    const touched = saved.length > 0 ? await store.touchedSince(nowMs - options.touchGraceMs) : [];
    const changedByTime = [...new Set(transitions.map((t) => t.key))];
    for (const a of saved) {
      const parsed = ruleSchema.safeParse(a.rule);
      if (!parsed.success) {
        log.error({ audienceId: a.id, issues: parsed.error.issues }, 'stored audience rule no longer valid, skipped');
        continue;
      }
      const rule: Rule = parsed.data;
      let changes: { entered: number; exited: number };
      if (a.refreshedAtMs === null || (options.fullEveryMs > 0 && nowMs - a.refreshedAtMs >= options.fullEveryMs)) {
        const { members, watch } = await engine.snapshot(rule, nowMs);
        checked += members.length + watch.size;
        changes = await store.refresh(a.id, members, nowMs, { watch });
      } else {
        const people = [
          ...new Set([...(due.get(a.id) ?? []), ...touched, ...(readsLifecycle(rule) ? changedByTime : [])]),
        ];
        if (people.length === 0) continue;
        checked += people.length;
        const { members, watch } = await engine.among(rule, nowMs, people);
        changes = await store.refresh(a.id, members, nowMs, { among: people, watch });
      }
      entered += changes.entered;
      exited += changes.exited;
    }
    await store.forgetTouched(nowMs - options.touchGraceMs);
    if (entered + exited > 0) options.onChanges(entered + exited);
    if (checked > 0)
      log.debug({ audiences: saved.length, checked, entered, exited, ms: Date.now() - started }, 'audiences refreshed');
    return { audiences: saved.length, checked, entered, exited };
  };
}
