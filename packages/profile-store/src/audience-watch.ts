import type { Pool, PoolClient } from '@pstream/platform';
import { idDigest } from './privacy';

/*
 * The watch bookkeeping of saved audiences: when each member's membership can next change by time
 * alone (`audience_watch`), and which people messages have touched since (`audience_touched`), so
 * the segmenter's audience sweep re-checks only them.
 */

export /** Inserts an audience's watch rows (profile key → instant in ms). */
async function writeWatch(client: PoolClient, id: string, watch: ReadonlyMap<string, number>): Promise<void> {
  if (watch.size === 0) return;
  await client.query(
    'INSERT INTO audience_watch (audience_id, profile_key, due_at) SELECT $1, k, to_timestamp(ms / 1000.0) FROM unnest($2::text[], $3::float8[]) AS w(k, ms)',
    [id, [...watch.keys()], [...watch.values()]],
  );
}

/**
 * Records that messages naming `ids` are being applied at `nowMs` (the sweep re-checks their people),
 * in the applying transaction (profile-store's `applyParts`). Erased ids (§5.7) are never recorded; an
 * erasure deletes those recorded before it.
 */
export async function touchIds(client: PoolClient, ids: readonly string[], nowMs: number): Promise<void> {
  // In id order, as forgetTouched deletes: two statements locking the same rows in different
  // orders deadlock (seen in bench:soak, a chunk's touch against the sweep's delete).
  const distinct = [...new Set(ids)].sort();
  if (distinct.length === 0) return;
  await client.query(
    `INSERT INTO audience_touched (id, touched_at)
     SELECT t.id, $3::timestamptz FROM unnest($1::text[], $2::text[]) AS t(id, digest)
     WHERE NOT EXISTS (SELECT 1 FROM suppressed_ids s WHERE s.digest = t.digest)
     ORDER BY t.id
     ON CONFLICT (id) DO UPDATE SET touched_at = greatest(audience_touched.touched_at, excluded.touched_at)`,
    [distinct, distinct.map(idDigest), new Date(nowMs).toISOString()],
  );
}

/** Due changes and touched people, for the segmenter's audience sweep. */
export function createAudienceWatch(pool: Pool) {
  return {
    /** Up to `limit` (audience, person) pairs whose next change by time alone is due at `nowMs`, earliest first. */
    async due(nowMs: number, limit: number): Promise<Map<string, string[]>> {
      const { rows } = await pool.query<{ audience_id: string; profile_key: string }>(
        'SELECT audience_id, profile_key FROM audience_watch WHERE due_at <= $1 ORDER BY due_at LIMIT $2',
        [new Date(nowMs).toISOString(), limit],
      );
      const out = new Map<string, string[]>();
      for (const r of rows) out.set(r.audience_id, [...(out.get(r.audience_id) ?? []), r.profile_key]);
      return out;
    },

    /** The people (profile keys, merged ids resolved) named by messages applied after `sinceMs`. */
    async touchedSince(sinceMs: number): Promise<string[]> {
      const { rows } = await pool.query<{ k: string }>(
        `SELECT DISTINCT coalesce(i.profile_key, t.id) AS k FROM audience_touched t LEFT JOIN identities i ON i.id = t.id WHERE t.touched_at > $1`,
        [new Date(sinceMs).toISOString()],
      );
      return rows.map((r) => r.k);
    },

    /** Forgets ids touched at or before `beforeMs`; returns how many. */
    async forgetTouched(beforeMs: number): Promise<number> {
      const { rowCount } = await pool.query(
        `DELETE FROM audience_touched WHERE id IN (
           SELECT id FROM audience_touched WHERE touched_at <= $1 ORDER BY id FOR UPDATE)`,
        [new Date(beforeMs).toISOString()],
      );
      return rowCount ?? 0;
    },
  };
}
