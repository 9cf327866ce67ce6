import { DAY_MS } from '@pstream/events';
import type { Pool } from '@pstream/platform';

/** What a retention pass keeps: dedupe records by receive time, daily aggregates by UTC day. */
export type Retention = { dedupeWindowHours: number; retentionDays: number };

/** Rows a pass removed, per table. */
export type Pruned = { applied_events: number; activity_daily: number; tag_activity_daily: number };

/**
 * One retention pass: removes dedupe records received before the window and daily aggregates of
 * days before the current UTC day and the `retentionDays` − 1 before it (the `inLastDays`
 * convention of audience rules). Each DELETE takes at most `batch` rows and commits on its own, so
 * no lock is held long; a table is left when a batch comes back short or `budgetMs` is spent (the
 * rest goes next time). Found through BRIN indexes on the time columns (migration 007): rows are
 * written roughly in time order, so the old ones sit in the first blocks.
 */
export async function pruneExpired(
  pool: Pool,
  nowMs: number,
  keep: Retention,
  batch = 5_000,
  budgetMs = 5_000,
): Promise<Pruned> {
  const deadline = Date.now() + budgetMs;
  const firstDay = new Date(Math.floor(nowMs / DAY_MS) * DAY_MS - (keep.retentionDays - 1) * DAY_MS)
    .toISOString()
    .slice(0, 10);
  const cutoffs: [keyof Pruned, string, string][] = [
    [
      'applied_events',
      'received_at < $1::timestamptz',
      new Date(nowMs - keep.dedupeWindowHours * 3_600_000).toISOString(),
    ],
    ['activity_daily', 'day < $1::date', firstDay],
    ['tag_activity_daily', 'day < $1::date', firstDay],
  ];
  const pruned: Pruned = { applied_events: 0, activity_daily: 0, tag_activity_daily: 0 };
  for (const [table, where, cutoff] of cutoffs) {
    for (;;) {
      const { rowCount } = await pool.query(
        `DELETE FROM ${table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM ${table} WHERE ${where} LIMIT $2))`,
        [cutoff, batch],
      );
      pruned[table] += rowCount ?? 0;
      if ((rowCount ?? 0) < batch || Date.now() > deadline) break;
    }
  }
  return pruned;
}

/**
 * The tables the segmenter itself empties or rewrites all the time (the two outboxes, drained by
 * the relays; the touched ids, forgotten by the audience sweep; the consumer positions, one row
 * rewritten per chunk) are vacuumed after each retention pass: without it, on a server with
 * autovacuum off, their dead rows pile up by the hundred thousand and every read of them walks
 * the dead ones. They hold a few live rows, so this takes milliseconds; the big tables are left to
 * autovacuum (docs/operations.md "Postgres upkeep"). A table another session holds is skipped.
 */
export async function vacuumQueues(pool: Pool): Promise<void> {
  await pool.query('VACUUM (SKIP_LOCKED) lifecycle_outbox, audience_outbox, audience_touched, consumer_offsets');
}
