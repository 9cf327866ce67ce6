import { linkOf, type TopicMessage } from '@pstream/events';
import { MAX_SOCIAL_ACTIVE_COUNT } from '@pstream/lifecycle';
import type { PoolClient } from '@pstream/platform';
import { pgArray } from './pg-array';

export type IdKind = 'user' | 'anonymous';

/** Every id a batch names, with its kind; a userId anywhere makes the id a user. */
export function idsOf(messages: readonly TopicMessage[]): Map<string, IdKind> {
  const ids = new Map<string, IdKind>();
  const add = (id: string | undefined, kind: IdKind) => {
    if (id === undefined) return;
    if (ids.get(id) !== 'user') ids.set(id, kind);
  };
  for (const m of messages) {
    if (m.kind === 'event') add(m.profileKey, m.userId !== undefined ? 'user' : 'anonymous');
    else {
      add(m.userId, 'user');
      add(linkOf(m)?.from, 'anonymous');
    }
  }
  return ids;
}

/**
 * Registers the batch's ids and locks their identity rows (in id order, so two segmenters lock
 * in the same order), then returns id → canonical profile key. The lock is what makes merges
 * safe under any interleaving: a batch of anonymous events and a merge of that anonymous id,
 * running in two segmenters, both lock the id's row, so one waits for the other to commit and
 * then resolves the id afresh (README, "identity merge").
 */
export async function lockIdentities(client: PoolClient, ids: Map<string, IdKind>): Promise<Map<string, string>> {
  const sorted = [...ids.keys()].sort();
  if (sorted.length === 0) return new Map();
  // DO UPDATE (unlike DO NOTHING) locks an existing row even when its WHERE skips the update.
  await client.query(
    `INSERT INTO identities AS i (id, profile_key, kind)
     SELECT id, id, kind FROM unnest($1::text[], $2::text[]) AS t(id, kind) ORDER BY id
     ON CONFLICT (id) DO UPDATE SET kind = 'user' WHERE i.kind = 'anonymous' AND excluded.kind = 'user'`,
    [pgArray(sorted), pgArray(sorted.map((id) => ids.get(id)))],
  );
  const { rows } = await client.query<{ id: string; profile_key: string }>(
    'SELECT id, profile_key FROM identities WHERE id = ANY($1::text[])',
    [pgArray(sorted)],
  );
  return new Map(rows.map((r) => [r.id, r.profile_key]));
}

/**
 * The counts the merged-id cap reads (docs/model.md §4.4): ids already merged into `to` (its
 * identities other than itself), and ids a merge of `from` would bring (`from` and every id merged
 * into it). The same counts as the scorer's merged sets in Redis.
 */
export async function mergedIdCounts(
  client: PoolClient,
  from: string,
  to: string,
): Promise<{ merged: number; incoming: number }> {
  const { rows } = await client.query<{ merged: number; incoming: number }>(
    `SELECT count(*) FILTER (WHERE profile_key = $2 AND id <> $2)::int AS merged, count(*) FILTER (WHERE profile_key = $1)::int AS incoming
     FROM identities WHERE profile_key IN ($1, $2)`,
    [from, to],
  );
  return rows[0]!;
}

/**
 * Merges profile `from` into profile `to` (docs/model.md §4.4): counts and aggregates add, first seen is
 * the min, last active the max, purchases, follows and history are unions, traits combine with
 * the surviving profile's own winning; every id of `from` then resolves to `to`. Set-based: one
 * statement per table whatever the size of the profiles.
 */
export async function mergeProfiles(client: PoolClient, from: string, to: string): Promise<void> {
  const p = [from, to];
  await client.query('UPDATE identities SET profile_key = $2 WHERE profile_key = $1', p);
  await client.query(
    `INSERT INTO people AS p (profile_key, first_seen_at, last_active_at, purchases, monetary_total, first_purchase_at,
                              last_purchase_at, stage, stage_since, stage_evaluated_at, traits, unconverted_purchases,
                              recent_social, value_tier, social_tier, next_review_at, personalization)
     SELECT $2, first_seen_at, last_active_at, purchases, monetary_total, first_purchase_at, last_purchase_at, stage,
            stage_since, stage_evaluated_at, traits, unconverted_purchases, recent_social, value_tier, social_tier, next_review_at, personalization
     FROM people WHERE profile_key = $1
     ON CONFLICT (profile_key) DO UPDATE SET
       first_seen_at = least(p.first_seen_at, excluded.first_seen_at),
       last_active_at = greatest(p.last_active_at, excluded.last_active_at),
       purchases = p.purchases + excluded.purchases,
       monetary_total = p.monetary_total + excluded.monetary_total,
       first_purchase_at = least(p.first_purchase_at, excluded.first_purchase_at),
       last_purchase_at = greatest(p.last_purchase_at, excluded.last_purchase_at),
       traits = excluded.traits || p.traits,
       unconverted_purchases = p.unconverted_purchases + excluded.unconverted_purchases,
       recent_social = ARRAY(SELECT t FROM unnest(p.recent_social || excluded.recent_social) t ORDER BY t DESC LIMIT ${MAX_SOCIAL_ACTIVE_COUNT}),
       stage = coalesce(p.stage, excluded.stage),
       personalization = p.personalization AND excluded.personalization,
       stage_since = CASE WHEN p.stage IS NULL THEN excluded.stage_since ELSE p.stage_since END,
       updated_at = now()`,
    p,
  );
  await client.query(
    `INSERT INTO event_counts AS c (profile_key, type, n) SELECT $2, type, n FROM event_counts WHERE profile_key = $1
     ON CONFLICT (profile_key, type) DO UPDATE SET n = c.n + excluded.n`,
    p,
  );
  await client.query('DELETE FROM event_counts WHERE profile_key = $1', [from]);
  await client.query('UPDATE purchases SET profile_key = $2 WHERE profile_key = $1', p);
  // Both profiles may hold lines of one order (§4.2 counts it once): count the orders afresh.
  await client.query(
    `UPDATE people SET purchases = (
       SELECT count(*) FILTER (WHERE order_id IS NULL) + count(DISTINCT (source, order_id)) FILTER (WHERE order_id IS NOT NULL)
       FROM purchases WHERE profile_key = $1)
     WHERE profile_key = $1`,
    [to],
  );
  await client.query(
    `INSERT INTO follows AS f (profile_key, target_type, target_id, following, since, changed_at)
     SELECT $2, target_type, target_id, following, since, changed_at FROM follows WHERE profile_key = $1
     ON CONFLICT (profile_key, target_type, target_id) DO UPDATE SET
       following = excluded.following,
       since = CASE WHEN excluded.following AND f.following THEN least(f.since, excluded.since) ELSE excluded.since END,
       changed_at = greatest(f.changed_at, excluded.changed_at)
     WHERE excluded.changed_at > f.changed_at OR (excluded.following AND f.following)`,
    p,
  );
  await client.query('DELETE FROM follows WHERE profile_key = $1', [from]);
  await client.query('UPDATE follow_history SET profile_key = $2 WHERE profile_key = $1', p);
  // Activity rows are summed by every reader (migration 070): moving them is the whole merge.
  await client.query('UPDATE activity SET profile_key = $2 WHERE profile_key = $1', p);
  await client.query('UPDATE lifecycle_transitions SET profile_key = $2 WHERE profile_key = $1', p);
  // Last: the person's counts and purchases moved above (no foreign key cascades them, migration 060).
  await client.query('DELETE FROM people WHERE profile_key = $1', [from]);
}

/** Traits from identify: stored on the person, newer values per trait win (arrival order). */
export async function storeTraits(
  client: PoolClient,
  key: string,
  traits: Record<string, unknown>,
  nowIso: string,
): Promise<void> {
  await client.query(
    `INSERT INTO people AS p (profile_key, traits, stage_evaluated_at) VALUES ($1, $2::jsonb, $3)
     ON CONFLICT (profile_key) DO UPDATE SET traits = p.traits || excluded.traits, updated_at = now()`,
    [key, JSON.stringify(traits), nowIso],
  );
}
