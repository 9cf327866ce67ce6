import type { Pool } from '@pstream/platform';

/** What Postgres holds about a person (written by the segmenter), ready for §5.1. */
export type ProfileFacts = {
  /** The canonical profile key the id resolved to (a userId, or an unlinked anonymousId). */
  profileKey: string;
  userId: string | null;
  anonymousIds: string[];
  traits: Record<string, unknown>;
  lifecycle: { stage: string | null; since: string | null; evaluatedAt: string };
  tiers: { value: string; social: string };
  stats: { firstSeenAt: string | null; lastActiveAt: string | null; events: Record<string, number>; purchases: number; monetaryTotal: number };
  follows: { count: number; recent: { type: string; id: string; since: string }[] };
  /** False once the person opted out of personalization (§4.5): no interests may be served. */
  personalization: boolean;
};

const RECENT_FOLLOWS = 10;
const iso = (d: Date | null) => d?.toISOString() ?? null;

/**
 * Reads a person's facts, stage and tiers. Any id resolves through `identities`, so an
 * anonymousId that was merged into a user answers with that user's profile.
 */
export function createFactsReader(pool: Pool) {
  return {
    /** The profile key `id` resolves to, when Postgres knows the person (the same rule as `get`'s 404). */
    async profileKeyOf(id: string): Promise<string | undefined> {
      const { rows } = await pool.query<{ profile_key: string }>(
        `SELECT p.profile_key FROM people p
         WHERE p.profile_key = coalesce((SELECT profile_key FROM identities WHERE id = $1), $1)`,
        [id],
      );
      return rows[0]?.profile_key;
    },

    async get(id: string): Promise<ProfileFacts | undefined> {
      // One named statement per connection: Postgres parses and plans it once, then only binds
      // the id (planning cost about twice the execution of this small indexed read).
      const { rows } = await pool.query<{
        profile_key: string;
        key_kind: string | null;
        anonymous_ids: string[];
        traits: Record<string, unknown>;
        first_seen_at: Date | null;
        last_active_at: Date | null;
        purchases: number;
        monetary_total: number;
        stage: string | null;
        stage_since: Date | null;
        stage_evaluated_at: Date;
        value_tier: string;
        social_tier: string;
        personalization: boolean;
        events: Record<string, number> | null;
        follow_count: number;
        recent_follows: { type: string; id: string; since: string }[] | null;
      }>({
        name: 'profile-facts',
        text: `WITH k AS (SELECT coalesce((SELECT profile_key FROM identities WHERE id = $1), $1) AS key)
         SELECT p.profile_key, p.traits, p.first_seen_at, p.last_active_at, p.purchases, p.monetary_total, p.stage, p.stage_since,
                p.stage_evaluated_at, p.value_tier, p.social_tier, p.personalization,
                (SELECT kind FROM identities i WHERE i.id = p.profile_key) AS key_kind,
                array(SELECT i.id FROM identities i WHERE i.profile_key = p.profile_key AND i.kind = 'anonymous' ORDER BY i.id) AS anonymous_ids,
                (SELECT jsonb_object_agg(type, n) FROM event_counts c WHERE c.profile_key = p.profile_key) AS events,
                (SELECT count(*) FROM follows f WHERE f.profile_key = p.profile_key AND f.following) AS follow_count,
                (SELECT jsonb_agg(jsonb_build_object('type', f.target_type, 'id', f.target_id,
                          'since', to_char(f.since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')) ORDER BY f.since DESC)
                 FROM (SELECT * FROM follows f WHERE f.profile_key = p.profile_key AND f.following
                       ORDER BY f.since DESC LIMIT ${RECENT_FOLLOWS}) f) AS recent_follows
         FROM k JOIN people p ON p.profile_key = k.key`,
        values: [id],
      });
      const r = rows[0];
      if (!r) return undefined;
      return {
        profileKey: r.profile_key,
        userId: r.key_kind === 'user' ? r.profile_key : null,
        anonymousIds: r.anonymous_ids,
        traits: r.traits,
        lifecycle: { stage: r.stage, since: iso(r.stage_since), evaluatedAt: r.stage_evaluated_at.toISOString() },
        tiers: { value: r.value_tier, social: r.social_tier },
        stats: {
          firstSeenAt: iso(r.first_seen_at),
          lastActiveAt: iso(r.last_active_at),
          events: r.events ?? {},
          purchases: r.purchases,
          monetaryTotal: r.monetary_total,
        },
        follows: { count: r.follow_count, recent: r.recent_follows ?? [] },
        personalization: r.personalization,
      };
    },
  };
}

/** Answers when Postgres answers: the readiness check of every service that uses this store. */
export async function pingPostgres(pool: Pool): Promise<void> {
  await pool.query('SELECT 1');
}
