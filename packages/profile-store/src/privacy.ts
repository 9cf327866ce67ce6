import { hash, randomUUID } from 'node:crypto';
import type { Logger, Pool, PoolClient } from '@pstream/platform';
import { pgArray } from './pg-array';
import { inTransaction } from './tx';

type Queryable = Pick<Pool, 'query'> | Pick<PoolClient, 'query'>;

/** How an id is kept in the suppression list and the audit: SHA-256 hex, never in clear. */
export function idDigest(id: string): string {
  // one-shot: the same SHA-256 hex as a Hash object's, without the object
  return hash('sha256', id, 'hex');
}

/**
 * The ids among `ids` that are suppressed by an erasure (§5.7): one indexed query for a whole
 * chunk. Both consumers call it once per chunk, never per event. `digestOf` is `idDigest`, or a
 * caller's memo of it (the scorer asks about the same ids twice a call, and people recur).
 */
export async function suppressedAmong(
  db: Queryable,
  ids: Iterable<string>,
  digestOf: (id: string) => string = idDigest,
): Promise<Set<string>> {
  const byDigest = new Map<string, string>();
  for (const id of ids) byDigest.set(digestOf(id), id);
  if (byDigest.size === 0) return new Set();
  const { rows } = await db.query<{ digest: string }>(
    'SELECT digest FROM suppressed_ids WHERE digest = ANY($1::text[])',
    [pgArray([...byDigest.keys()])],
  );
  return new Set(rows.map((r) => byDigest.get(r.digest)!));
}

/**
 * SQL: true unless the person whose profile key is the expression `key` opted out — a probe of the
 * index of the people who opted out (migration 140, a handful of entries), never a people row.
 */
export const NOT_OPTED_OUT = (key: string) =>
  `NOT EXISTS (SELECT 1 FROM people p WHERE p.profile_key = ${key} AND NOT p.personalization)`;

/**
 * Consent (§4.5): the ids among `ids` whose person has NOT opted out of personalization. An id
 * resolves through `identities` to its person; an id without a person is allowed (nothing is
 * known about it, so nothing is served either). The one read every interest-serving path calls.
 * It asks the index of the people who opted out (migration 140: a handful of entries, cached), never
 * the people rows: an allowed person — nearly everyone — costs no heap page. Keys deduplicated and
 * sorted, so the identity lookups walk their index in order.
 */
export async function personalizationAllowed(db: Queryable, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const { rows } = await db.query<{ id: string }>(
    `SELECT t.id FROM unnest($1::text[]) AS t(id) LEFT JOIN identities i ON i.id = t.id
     WHERE ${NOT_OPTED_OUT('coalesce(i.profile_key, t.id)')}`,
    [[...new Set(ids)].sort()],
  );
  return new Set(rows.map((r) => r.id));
}

/**
 * Sets a person's consent; false when no person has this id (nothing changed). Opting out also
 * drops their stored predicted traits (§5.9), in the same statement.
 */
export async function setPersonalization(pool: Pool, id: string, allowed: boolean): Promise<boolean> {
  const { rows } = await pool.query<{ n: number }>(
    `WITH p AS (UPDATE people SET personalization = $2, updated_at = now()
                WHERE profile_key = coalesce((SELECT profile_key FROM identities WHERE id = $1), $1) RETURNING profile_key),
          d AS (DELETE FROM predicted_traits WHERE NOT $2 AND profile_key IN (SELECT profile_key FROM p))
     SELECT count(*)::int AS n FROM p`,
    [id, allowed],
  );
  return rows[0]!.n > 0;
}

export type Erasure = { id: string; status: 'pending' | 'done'; requestedAt: string; doneAt: string | null };
export type ErasureStarted = { erasureId: string; ids: string[] };

/**
 * Step 1 of an erasure, one transaction: takes the id's identity row (an upsert, so a segmenter
 * chunk inserting the same id concurrently is waited for, or waits), finds the person and every
 * id merged into them (repeated until no new id appears, so a merge committing meanwhile is
 * included), deletes all their rows, destroys their keys (so their sealed messages on every
 * topic become unreadable), suppresses every id and writes the audit row. A segmenter
 * chunk that names one of these ids either committed before (and its rows are deleted here) or
 * waits on the identity rows and then finds the ids suppressed.
 */
export async function erasePerson(
  pool: Pool,
  log: Logger,
  id: string,
  requestedBy: string,
  nowMs: number,
  /** Destroys the keys their data is sealed with on every topic (platform's `keyring.shred`), in this transaction. */
  shredKeys: (tx: PoolClient, ids: string[]) => Promise<void>,
): Promise<ErasureStarted> {
  return inTransaction(
    pool,
    async (client) => {
      await client.query(
        `INSERT INTO identities AS i (id, profile_key, kind) VALUES ($1, $1, 'anonymous')
         ON CONFLICT (id) DO UPDATE SET kind = i.kind`,
        [id],
      );
      const key = (
        await client.query<{ profile_key: string }>('SELECT profile_key FROM identities WHERE id = $1', [id])
      ).rows[0]!.profile_key;
      const ids = new Set([id, key]);
      for (;;) {
        const { rows } = await client.query<{ id: string }>(
          'SELECT id FROM identities WHERE profile_key = $1 OR id = ANY($2::text[]) ORDER BY id FOR UPDATE',
          [key, [...ids]],
        );
        const before = ids.size;
        for (const r of rows) ids.add(r.id);
        if (ids.size === before) break;
      }
      const all = [...ids].sort();
      await deletePersonRows(client, key, all);
      await shredKeys(client, all);
      const erasureId = randomUUID();
      const at = new Date(nowMs).toISOString();
      const digests = all.map(idDigest);
      await client.query(
        `INSERT INTO erasures (id, requested_by, requested_at, id_digests, pending_ids, status, postgres_done_at)
         VALUES ($1, $2, $3, $4, $5, 'pending', $3)`,
        [erasureId, requestedBy, at, digests, all],
      );
      await client.query(
        `INSERT INTO suppressed_ids (digest, erasure_id) SELECT d, $2 FROM unnest($1::text[]) d ON CONFLICT (digest) DO NOTHING`,
        [digests, erasureId],
      );
      return { erasureId, ids: all };
    },
    { log },
  );
}

/** Every row of person `key` (ids `ids`); follows first, so the follower aggregates' triggers see the person. */
async function deletePersonRows(client: PoolClient, key: string, ids: string[]): Promise<void> {
  const k = [key];
  await client.query('DELETE FROM follows WHERE profile_key = $1', k);
  await client.query('DELETE FROM follow_history WHERE profile_key = $1', k);
  await client.query('DELETE FROM activity WHERE profile_key = $1', k);
  await client.query('DELETE FROM lifecycle_transitions WHERE profile_key = $1', k);
  await client.query('DELETE FROM lifecycle_outbox WHERE profile_key = $1', k);
  // saved audiences forget them at once, and no entry/exit naming them is published
  await client.query('DELETE FROM audience_members WHERE profile_key = $1', k);
  await client.query('DELETE FROM audience_outbox WHERE profile_key = $1', k);
  // (per audience: the primary key leads with the audience)
  await client.query(
    'DELETE FROM audience_watch WHERE audience_id IN (SELECT id FROM audiences) AND profile_key = $1',
    k,
  );
  await client.query('DELETE FROM audience_touched WHERE id = ANY($1::text[])', [ids]);
  await client.query('DELETE FROM purchases WHERE profile_key = $1', k);
  await client.query('DELETE FROM event_counts WHERE profile_key = $1', k);
  await client.query('DELETE FROM people WHERE profile_key = $1', k);
  await client.query('DELETE FROM identities WHERE id = ANY($1::text[])', [ids]);
}

/** Step 2 of an erasure: Redis is clean too; the erasure is done. */
export async function markErasureDone(pool: Pool, erasureId: string, nowMs: number): Promise<void> {
  const at = new Date(nowMs).toISOString();
  await pool.query(
    `UPDATE erasures SET status = 'done', pending_ids = NULL, redis_done_at = $2, done_at = $2 WHERE id = $1`,
    [erasureId, at],
  );
}

export async function readErasure(pool: Pool, erasureId: string): Promise<Erasure | undefined> {
  const { rows } = await pool.query<{
    id: string;
    status: 'pending' | 'done';
    requested_at: Date;
    done_at: Date | null;
  }>('SELECT id, status, requested_at, done_at FROM erasures WHERE id = $1', [erasureId]);
  const r = rows[0];
  return (
    r && {
      id: r.id,
      status: r.status,
      requestedAt: r.requested_at.toISOString(),
      doneAt: r.done_at?.toISOString() ?? null,
    }
  );
}

/**
 * Erasures whose Redis step has not finished (the query API stopped, or Redis was away), oldest
 * first, with their ids: the only place an erased id is kept in clear, until the step is done.
 */
export async function pendingErasures(pool: Pool, limit = 100): Promise<{ id: string; ids: string[] }[]> {
  const { rows } = await pool.query<{ id: string; pending_ids: string[] }>(
    `SELECT id, pending_ids FROM erasures WHERE status = 'pending' ORDER BY requested_at LIMIT $1`,
    [limit],
  );
  return rows.map((r) => ({ id: r.id, ids: r.pending_ids }));
}
