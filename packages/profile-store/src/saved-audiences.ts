import type { Pool, PoolClient } from '@pstream/platform';
import { writeWatch } from './audience-watch';

/** Members written at once from which the table's statistics are refreshed at once. */
const ANALYZE_AFTER = 10_000;

export type AudienceRow = { id: string; name: string; rule: unknown; count: number; createdAt: string };

/** Runs `fn` in one transaction (no retries: an HTTP request or the next sweep round tries again). */
async function transaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/**
 * Saved audiences (docs/api.md §5.4): create, list, read, delete, keyset-paged members, and the
 * sweep's refresh (new members → entries/exits in the audience outbox, in one transaction).
 */
export function createSavedAudiences(pool: Pool) {
  return {
    /**
     * Saves an audience with its members and the instants their membership can next change by time
     * alone (`watch`: profile key → ms), in one transaction.
     */
    async create(a: {
      id: string;
      name: string;
      rule: unknown;
      members: readonly string[];
      watch: ReadonlyMap<string, number>;
      nowMs: number;
    }): Promise<AudienceRow> {
      const at = new Date(a.nowMs).toISOString();
      await transaction(pool, async (client) => {
        await client.query(
          'INSERT INTO audiences (id, name, rule, created_at, refreshed_at) VALUES ($1, $2, $3, $4, $4)',
          [a.id, a.name, JSON.stringify(a.rule), at],
        );
        await client.query(
          'INSERT INTO audience_members (audience_id, profile_key, entered_at) SELECT $1, k, $3 FROM unnest($2::text[]) k',
          [a.id, a.members, at],
        );
        await writeWatch(client, a.id, a.watch);
      });
      // Members pages walk the primary key in order; right after a bulk insert, before autovacuum
      // analyzes the table, the planner underestimates the audience and sorts instead (100× slower).
      if (a.members.length >= ANALYZE_AFTER) await pool.query('ANALYZE audience_members');
      return { id: a.id, name: a.name, rule: a.rule, count: a.members.length, createdAt: at };
    },

    async list(): Promise<AudienceRow[]> {
      const { rows } = await pool.query<{ id: string; name: string; rule: unknown; created_at: Date; count: number }>(
        `SELECT a.id, a.name, a.rule, a.created_at, (SELECT count(*)::int FROM audience_members m WHERE m.audience_id = a.id) AS count
         FROM audiences a ORDER BY a.created_at, a.id`,
      );
      return rows.map((r) => ({
        id: r.id,
        name: r.name,
        rule: r.rule,
        count: r.count,
        createdAt: r.created_at.toISOString(),
      }));
    },

    async get(id: string): Promise<AudienceRow | undefined> {
      const { rows } = await pool.query<{ id: string; name: string; rule: unknown; created_at: Date; count: number }>(
        `SELECT a.id, a.name, a.rule, a.created_at, (SELECT count(*)::int FROM audience_members m WHERE m.audience_id = a.id) AS count
         FROM audiences a WHERE a.id = $1`,
        [id],
      );
      const r = rows[0];
      return r && { id: r.id, name: r.name, rule: r.rule, count: r.count, createdAt: r.created_at.toISOString() };
    },

    /** Deletes an audience and its members; true when it existed. */
    async remove(id: string): Promise<boolean> {
      const { rowCount } = await pool.query('DELETE FROM audiences WHERE id = $1', [id]);
      return (rowCount ?? 0) > 0;
    },

    /**
     * A page of members in profile-key order after `after`: keyset paging over the stored
     * membership, so a member appears at most once across pages however the membership changes
     * meanwhile, and every member present throughout the paging appears exactly once.
     */
    async members(id: string, after: string | undefined, limit: number): Promise<{ members: string[]; more: boolean }> {
      const { rows } = await pool.query<{ profile_key: string }>(
        `SELECT profile_key FROM audience_members WHERE audience_id = $1 AND ($2::text IS NULL OR profile_key > $2)
         ORDER BY profile_key LIMIT $3`,
        [id, after ?? null, limit + 1],
      );
      return { members: rows.slice(0, limit).map((r) => r.profile_key), more: rows.length > limit };
    },

    /** The saved audiences (id, rule, instant of the last full evaluation), for the sweep. */
    async all(): Promise<{ id: string; rule: unknown; refreshedAtMs: number | null }[]> {
      const { rows } = await pool.query<{ id: string; rule: unknown; refreshed_at: Date | null }>(
        'SELECT id, rule, refreshed_at FROM audiences ORDER BY id',
      );
      return rows.map((r) => ({ id: r.id, rule: r.rule, refreshedAtMs: r.refreshed_at?.getTime() ?? null }));
    },

    /**
     * Replaces an audience's members by `members` and records every entry and exit in the outbox,
     * in one transaction (published iff recorded). The audience row is locked, so two sweeps of
     * one audience take turns. Returns the number of entries and exits (0/0 when it was deleted).
     *
     * With `among`, only those people are considered: `members` are the ones of them in the
     * audience now, the others of them leave it, nobody else changes. With `watch`, the people's
     * next instants of change by time alone are replaced too (all of the audience's without
     * `among`); the last full evaluation's instant is recorded when `among` is absent.
     */
    async refresh(
      id: string,
      members: readonly string[],
      nowMs: number,
      options: { among?: readonly string[]; watch?: ReadonlyMap<string, number> } = {},
    ): Promise<{ entered: number; exited: number }> {
      const at = new Date(nowMs).toISOString();
      const among = options.among ?? null;
      return transaction(pool, async (client) => {
        const { rowCount } = await client.query('SELECT 1 FROM audiences WHERE id = $1 FOR UPDATE', [id]);
        if (!rowCount) return { entered: 0, exited: 0 };
        const { rows } = await client.query<{ change: string; n: number }>(
          `WITH cur AS (SELECT DISTINCT k FROM unnest($2::text[]) k),
           gone AS (SELECT profile_key FROM audience_members WHERE audience_id = $1 AND ($4::text[] IS NULL OR profile_key = ANY($4::text[]))
                    EXCEPT SELECT k FROM cur),
           exits AS (DELETE FROM audience_members m USING gone WHERE m.audience_id = $1 AND m.profile_key = gone.profile_key RETURNING m.profile_key),
           enters AS (INSERT INTO audience_members (audience_id, profile_key, entered_at) SELECT $1, k, $3 FROM cur ON CONFLICT DO NOTHING RETURNING profile_key),
           changes AS (SELECT profile_key, 'exit' AS change FROM exits UNION ALL SELECT profile_key, 'enter' FROM enters),
           out AS (INSERT INTO audience_outbox (profile_key, payload)
                   SELECT profile_key, jsonb_build_object('audienceId', $1::text, 'id', profile_key, 'change', change, 'at', $3::text)
                   FROM changes ORDER BY change DESC, profile_key RETURNING payload ->> 'change' AS change)
           SELECT change, count(*)::int AS n FROM out GROUP BY change`,
          [id, members, at, among],
        );
        if (options.watch) {
          await client.query(
            'DELETE FROM audience_watch WHERE audience_id = $1 AND ($2::text[] IS NULL OR profile_key = ANY($2::text[]))',
            [id, among],
          );
          await writeWatch(client, id, options.watch);
        }
        if (among === null) await client.query('UPDATE audiences SET refreshed_at = $2 WHERE id = $1', [id, at]);
        const n = (c: string) => rows.find((r) => r.change === c)?.n ?? 0;
        return { entered: n('enter'), exited: n('exit') };
      });
    },
  };
}
