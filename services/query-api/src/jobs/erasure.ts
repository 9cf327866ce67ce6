import { eraseInterests, type Keys } from '@pstream/interest-store';
import type { Logger, Pool, Redis } from '@pstream/platform';
import { markErasureDone, pendingErasures } from '@pstream/profile-store';

export type ErasureDeps = { pool: Pool; redis: Redis; keys: Keys; log: Logger };

/**
 * The second step of an erasure (docs/model.md §4.5): the person's interests out of Redis, then the
 * erasure marked `done`. The first step (Postgres, in one transaction) is the route's.
 */
export function finishErasure(deps: ErasureDeps): (erasureId: string, ids: string[]) => Promise<void> {
  return async (erasureId, ids) => {
    await eraseInterests(deps.redis, deps.keys, ids);
    await markErasureDone(deps.pool, erasureId, Date.now());
  };
}

/**
 * A background job of the query API: every `retryMs`, finishes each erasure still `pending`
 * because its Redis step failed, until it succeeds. One round at a time; `stop` ends it.
 */
export function startErasureRetry(deps: ErasureDeps & { retryMs: number }): { stop(): void } {
  const finish = finishErasure(deps);
  let retrying = false;
  const retry = async () => {
    if (retrying) return;
    retrying = true;
    try {
      for (const e of await pendingErasures(deps.pool)) await finish(e.id, e.ids);
    } catch (err) {
      deps.log.warn({ err: (err as Error).message }, 'erasure: Redis step failed, will retry');
    } finally {
      retrying = false;
    }
  };
  const timer = setInterval(() => void retry(), deps.retryMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
