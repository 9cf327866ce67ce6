import { DAY_MS } from '@pstream/events';
import type { Pool } from '@pstream/platform';
import { TAG_LIST_SQL } from './fold';

/** What a retention pass keeps: dedupe records by receive time, daily aggregates by UTC day. */
export type Retention = { dedupeWindowHours: number; retentionDays: number };

/**
 * Rows a pass removed: dedupe records, and the rows of the `activity_daily` and
 * `tag_activity_daily` views (migration 070: person × type × target, and × tag, per day) whose days
 * it removed from `activity`.
 */
export type Pruned = { applied_events: number; activity_daily: number; tag_activity_daily: number };

/**
 * One retention pass: removes dedupe records received before the window and daily activity of
 * days before the current UTC day and the `retentionDays` − 1 before it (the `inLastDays`
 * convention of audience rules). Each DELETE takes at most `batch` dedupe records, or the
 * person-days of at most `batch` activity rows (all of a person's rows of a day at once, so the
 * view rows it counts are whole), and commits on its own, so no lock is held long; a table is left when a batch comes
 * back short or `budgetMs` is spent (the rest goes next time). Found through BRIN indexes on the
 * time columns (migrations 007, 070): rows are written roughly in time order, so the old ones sit
 * in the first blocks.
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
  const dedupeCutoff = new Date(nowMs - keep.dedupeWindowHours * 3_600_000).toISOString();
  const pruned: Pruned = { applied_events: 0, activity_daily: 0, tag_activity_daily: 0 };
  for (;;) {
    const { rowCount } = await pool.query(
      `DELETE FROM applied_events WHERE ctid = ANY(ARRAY(SELECT ctid FROM applied_events WHERE received_at < $1::timestamptz LIMIT $2))`,
      [dedupeCutoff, batch],
    );
    pruned.applied_events += rowCount ?? 0;
    if ((rowCount ?? 0) < batch || Date.now() > deadline) break;
  }
  for (;;) {
    // the person-days of (at most) `batch` old rows, each deleted whole
    const { rows } = await pool.query<{ sampled: number; rows: number; tag_rows: number }>(
      `WITH sample AS (SELECT profile_key, day FROM activity WHERE day < $1::date LIMIT $2),
       gone AS (DELETE FROM activity a USING (SELECT DISTINCT profile_key, day FROM sample) d
                WHERE a.profile_key = d.profile_key AND a.day = d.day RETURNING a.*)
       SELECT (SELECT count(*) FROM sample)::int AS sampled,
              (SELECT count(*) FROM (SELECT DISTINCT profile_key, day, type, target_type, target_id FROM gone WHERE target_type IS NOT NULL) r)::int AS rows,
              (SELECT count(*) FROM (SELECT DISTINCT profile_key, day, type, tag FROM gone, unnest(${TAG_LIST_SQL}) AS tag) r)::int AS tag_rows`,
      [firstDay, batch],
    );
    const r = rows[0]!;
    pruned.activity_daily += r.rows;
    pruned.tag_activity_daily += r.tag_rows;
    if (r.sampled < batch || Date.now() > deadline) break;
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
 * How much one `analyzeStale` call may do: at most `tables` tables, none but the first started once `budgetMs` is
 * spent — so a call takes about `budgetMs` plus at most one table's ANALYZE.
 */
export type AnalyzeLimit = { tables?: number; budgetMs?: number };

/**
 * What the retention pass allows itself (`SegmentStore.prune`): tables in turn until 100 ms have
 * been spent (the first always; none started after). ANALYZE is a core's worth of CPU while it
 * runs (it reads up to 30 000 rows a table and sorts them per column), and on a 2-core machine the
 * apply's backend and the node processes share the other core: every stale table at once was
 * 0.4–1.4 s of it in one go, and the freshness probes posted meanwhile were the slowest of their
 * window (BENCHMARKS.md "The segmenter's freshness tail at a low rate"). The budget bounds a pass
 * to 100 ms and the dearest table (`activity`, 0.2–0.3 s after 100 000 events on the bench) while
 * still taking the few-row tables, milliseconds each, several a pass; the tables take turns, so each
 * stale table is reached within a few passes (four to six of 20 s on the bench).
 */
export const ANALYZE_PER_PASS: AnalyzeLimit = { budgetMs: 100 };

/**
 * ANALYZE of this schema's tables whose planner statistics are missing or stale by autovacuum's own
 * default rule (more than 50 + 10 % of the rows changed since the last ANALYZE); returns the tables
 * it ran ANALYZE on, by name (one another session holds is skipped by Postgres with a warning, yet
 * listed: it is still stale, so it comes first again next call). Autovacuum does this where it runs; where it is off (our dev machines) nothing ever
 * analyzes, a table's row count stays "unknown" and the planner guesses from its pages: the
 * evaluation statement of a 500-event chunk was estimated at 514 000 on a 50 000-person schema and
 * read `people` with a sequential scan (60 ms; 12 ms by the index once analyzed). Run after each
 * retention pass; a table another session holds is skipped and taken next time.
 *
 * One table a statement, the least recently analyzed first (never analyzed: first of all), until
 * `limit` is reached: the rest is still stale next call and taken then, and a table just analyzed
 * goes to the back, so with a limit every stale table is reached in turn — even one that is stale
 * again at every call (the queue tables, rewritten all the time) cannot keep another out. Without a
 * limit, every stale table.
 */
export async function analyzeStale(pool: Pool, limit: AnalyzeLimit = {}): Promise<string[]> {
  const { rows } = await pool.query<{ name: string }>(
    `SELECT format('%I.%I', s.schemaname, s.relname) AS name
     FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
     WHERE s.schemaname = current_schema() AND s.n_mod_since_analyze > 50 + 0.1 * greatest(c.reltuples, 0)
     ORDER BY greatest(s.last_analyze, s.last_autoanalyze) NULLS FIRST, s.relname`,
  );
  const deadline = Date.now() + (limit.budgetMs ?? Infinity);
  const analyzed: string[] = [];
  for (const { name } of rows) {
    if (analyzed.length >= (limit.tables ?? Infinity) || (analyzed.length > 0 && Date.now() >= deadline)) break;
    await pool.query(`ANALYZE (SKIP_LOCKED) ${name}`);
    analyzed.push(name);
  }
  return analyzed.sort();
}
