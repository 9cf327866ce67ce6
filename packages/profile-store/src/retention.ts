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

/**
 * ANALYZE of this schema's tables whose planner statistics are missing or stale by autovacuum's own
 * default rule (more than 50 + 10 % of the rows changed since the last ANALYZE); returns the tables
 * analyzed. Autovacuum does this where it runs; where it is off (our dev machines) nothing ever
 * analyzes, a table's row count stays "unknown" and the planner guesses from its pages: the
 * evaluation statement of a 500-event chunk was estimated at 514 000 on a 50 000-person schema and
 * read `people` with a sequential scan (60 ms; 12 ms by the index once analyzed). Run after each
 * retention pass; a table another session holds is skipped and taken next time.
 */
export async function analyzeStale(pool: Pool): Promise<string[]> {
  const { rows } = await pool.query<{ name: string }>(
    `SELECT format('%I.%I', s.schemaname, s.relname) AS name
     FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
     WHERE s.schemaname = current_schema() AND s.n_mod_since_analyze > 50 + 0.1 * greatest(c.reltuples, 0)
     ORDER BY s.relname`,
  );
  if (rows.length > 0) await pool.query(`ANALYZE (SKIP_LOCKED) ${rows.map((r) => r.name).join(', ')}`);
  return rows.map((r) => r.name);
}
