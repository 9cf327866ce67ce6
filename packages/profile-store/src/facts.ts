import { dedupeId, type ProfileEvent } from '@pstream/events';
import type { PoolClient } from '@pstream/platform';
import { MAX_SOCIAL_ACTIVE_COUNT } from '@pstream/lifecycle';
import type { EventRows } from './fold';

/**
 * Records each event's dedupe key — (source, `eventId@profileKey`), the rule both stores share
 * (see @pstream/events dedupeId) — and returns those recorded now (first occurrence wins).
 */
export async function keepUnseen(client: PoolClient, events: ProfileEvent[]): Promise<ProfileEvent[]> {
  if (events.length === 0) return [];
  const { rows } = await client.query<{ source: string; event_id: string }>(
    `INSERT INTO applied_events (source, event_id, received_at)
     SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
     ON CONFLICT DO NOTHING RETURNING source, event_id`,
    [events.map((e) => e.source), events.map(dedupeId), events.map((e) => e.receivedAt)],
  );
  const inserted = new Set(rows.map((r) => `${r.source}\u0000${r.event_id}`));
  return events.filter((e) => inserted.delete(`${e.source}\u0000${dedupeId(e)}`));
}

const col = <T, K extends keyof T>(rows: readonly T[], k: K) => rows.map((r) => r[k]);

/** Applies a batch's folded rows: one multi-row statement per table. */
export async function applyEventRows(client: PoolClient, rows: EventRows, nowIso: string): Promise<void> {
  const social = rows.people.flatMap((p) => p.social.map((at) => ({ key: p.key, at })));
  await client.query(
    `WITH s AS (
       SELECT k, array_agg(t ORDER BY t DESC) AS ts FROM unnest($4::text[], $5::timestamptz[]) AS x(k, t) GROUP BY k
     )
     INSERT INTO people AS p (profile_key, first_seen_at, last_active_at, recent_social, stage_evaluated_at)
     SELECT d.k, d.f, d.l, coalesce(s.ts, '{}'), $6
     FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS d(k, f, l) LEFT JOIN s USING (k)
     ON CONFLICT (profile_key) DO UPDATE SET
       first_seen_at = least(p.first_seen_at, excluded.first_seen_at),
       last_active_at = greatest(p.last_active_at, excluded.last_active_at),
       recent_social = CASE WHEN cardinality(excluded.recent_social) = 0 THEN p.recent_social
         ELSE ARRAY(SELECT t FROM unnest(p.recent_social || excluded.recent_social) t ORDER BY t DESC LIMIT ${MAX_SOCIAL_ACTIVE_COUNT}) END,
       updated_at = now()`,
    [col(rows.people, 'key'), col(rows.people, 'firstSeen'), col(rows.people, 'lastActive'), col(social, 'key'), col(social, 'at'), nowIso],
  );
  await client.query(
    `INSERT INTO event_counts AS c (profile_key, type, n)
     SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
     ON CONFLICT (profile_key, type) DO UPDATE SET n = c.n + excluded.n`,
    [col(rows.counts, 'key'), col(rows.counts, 'type'), col(rows.counts, 'n')],
  );
  if (rows.purchases.length > 0) {
    const ps = rows.purchases;
    // Only purchases inserted now touch the totals, so a purchase is never added twice. An order
    // counts once (§4.2): when none of its lines was stored before (this statement's snapshot does
    // not see the rows its own INSERT adds); a line without an order counts on its own.
    await client.query(
      `WITH ins AS (
         INSERT INTO purchases (profile_key, source, event_id, occurred_at, amount, currency, base_amount, order_id)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::numeric[], $6::text[], $7::numeric[], $8::text[])
         ON CONFLICT DO NOTHING RETURNING profile_key, source, order_id, occurred_at, base_amount
       ), lines AS (
         SELECT i.*, i.order_id IS NOT NULL AND EXISTS (
                  SELECT 1 FROM purchases x WHERE x.profile_key = i.profile_key AND x.source = i.source AND x.order_id = i.order_id) AS known_order
         FROM ins i
       ), agg AS (
         SELECT profile_key,
                count(*) FILTER (WHERE order_id IS NULL)
                  + count(DISTINCT (source, order_id)) FILTER (WHERE order_id IS NOT NULL AND NOT known_order) AS n,
                coalesce(sum(base_amount), 0) AS total, count(*) FILTER (WHERE base_amount IS NULL) AS unconverted,
                min(occurred_at) AS first, max(occurred_at) AS last
         FROM lines GROUP BY profile_key
       )
       UPDATE people p SET
         purchases = p.purchases + agg.n,
         monetary_total = p.monetary_total + agg.total,
         unconverted_purchases = p.unconverted_purchases + agg.unconverted,
         first_purchase_at = least(p.first_purchase_at, agg.first),
         last_purchase_at = greatest(p.last_purchase_at, agg.last)
       FROM agg WHERE p.profile_key = agg.profile_key`,
      [col(ps, 'key'), col(ps, 'source'), col(ps, 'eventId'), col(ps, 'at'), col(ps, 'amount'), col(ps, 'currency'), col(ps, 'baseAmount'), col(ps, 'orderId')],
    );
  }
  if (rows.daily.length > 0) {
    const d = rows.daily;
    await client.query(
      `INSERT INTO activity_daily AS a (profile_key, day, type, target_type, target_id, n)
       SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::text[], $6::int[])
       ON CONFLICT (profile_key, type, target_type, target_id, day) DO UPDATE SET n = a.n + excluded.n`,
      [col(d, 'key'), col(d, 'day'), col(d, 'type'), col(d, 'targetType'), col(d, 'targetId'), col(d, 'n')],
    );
  }
  if (rows.tagDaily.length > 0) {
    const d = rows.tagDaily;
    await client.query(
      `INSERT INTO tag_activity_daily AS a (profile_key, day, type, tag, n)
       SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::int[])
       ON CONFLICT (profile_key, type, tag, day) DO UPDATE SET n = a.n + excluded.n`,
      [col(d, 'key'), col(d, 'day'), col(d, 'type'), col(d, 'tag'), col(d, 'n')],
    );
  }
  if (rows.follows.length > 0) {
    const f = rows.follows;
    const h = rows.followHistory;
    await client.query(
      `INSERT INTO follow_history (source, event_id, profile_key, target_type, target_id, action, at)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[])
       ON CONFLICT DO NOTHING`,
      [col(h, 'source'), col(h, 'eventId'), col(h, 'key'), col(h, 'targetType'), col(h, 'targetId'), col(h, 'action'), col(h, 'at')],
    );
    // The latest follow/unfollow by event time wins; a late, older one only goes to the history.
    await client.query(
      `INSERT INTO follows AS f (profile_key, target_type, target_id, following, since, changed_at)
       SELECT k, tt, ti, fl, CASE WHEN fl THEN at END, at
       FROM unnest($1::text[], $2::text[], $3::text[], $4::boolean[], $5::timestamptz[]) AS t(k, tt, ti, fl, at)
       ON CONFLICT (profile_key, target_type, target_id) DO UPDATE SET
         following = excluded.following,
         since = CASE WHEN excluded.following AND f.following THEN f.since ELSE excluded.since END,
         changed_at = excluded.changed_at
       WHERE excluded.changed_at >= f.changed_at`,
      [col(f, 'key'), col(f, 'targetType'), col(f, 'targetId'), col(f, 'following'), col(f, 'at')],
    );
  }
}
