import { isoTimestampTypes, type Pool } from '@pstream/platform';

/** What Postgres holds about a person (written by the segmenter), ready for §5.1. */
export type ProfileFacts = {
  /** The canonical profile key the id resolved to (a userId, or an unlinked anonymousId). */
  profileKey: string;
  userId: string | null;
  anonymousIds: string[];
  traits: Record<string, unknown>;
  lifecycle: { stage: string | null; since: string | null; evaluatedAt: string };
  tiers: { value: string; social: string };
  stats: {
    firstSeenAt: string | null;
    lastActiveAt: string | null;
    events: Record<string, number>;
    purchases: number;
    monetaryTotal: number;
  };
  follows: { count: number; recent: { type: string; id: string; since: string }[] };
  /** False once the person opted out of personalization (§4.5): no interests may be served. */
  personalization: boolean;
  /** The stored predictions (§5.9, any trait, given or not: see `predictionsServed`). */
  predictions: StoredPrediction[];
};

/** A row of `predicted_traits`. */
export type StoredPrediction = { trait: string; value: string; confidence: number };

const RECENT_FOLLOWS = 10;

/** At most this many ids per statement of `get`, and this many such statements at once per reader. */
const MAX_BATCH = 64;
const MAX_IN_FLIGHT = 3;
/**
 * The most connections a reader uses at once: what its pool should keep open (`createPool`'s
 * `min`), so that a rise in reads never waits for a connection to be opened (see `warm`).
 */
export const FACTS_CONNECTIONS = MAX_IN_FLIGHT;
/**
 * Session settings for a pool that runs only the facts statement (`createPool`'s `settings`; the
 * query API's profile reader pool): its generic plan on every execution. With the default
 * (`plan_cache_mode = auto`) Postgres never settled on the generic plan for this statement — its
 * `pg_prepared_statements.custom_plans` counted every execution and `generic_plans` none — so every
 * read planned the statement again: 570-720 µs of the backend's CPU per 1-id statement against
 * 160-230 µs with the generic plan, 820-990 against 420-460 µs for 8 ids (BENCHMARKS.md "Reads",
 * readcpu). The generic plan is the one the plan test holds to primary-key lookups
 * (test/read.int.test.ts), one per id whatever the batch's size.
 */
export const FACTS_SESSION_SETTINGS: Readonly<Record<string, string>> = { plan_cache_mode: 'force_generic_plan' };
/** The name of the facts statement on every connection (prepared once per connection). */
const STATEMENT = 'profile-facts-batch';

type FactsRow = {
  ord: number;
  profile_key: string;
  key_kind: string | null;
  anonymous_ids: string[];
  traits: Record<string, unknown>;
  /** The timestamps as ISO-8601 text (`isoTimestampTypes`), as the answer prints them. */
  first_seen_at: string | null;
  last_active_at: string | null;
  purchases: number;
  monetary_total: number;
  stage: string | null;
  stage_since: string | null;
  stage_evaluated_at: string;
  value_tier: string;
  social_tier: string;
  personalization: boolean;
  events: Record<string, number> | null;
  follow_count: number;
  recent_follows: { type: string; id: string; since: string }[] | null;
  /** [trait, value, confidence as Postgres writes a real] per stored prediction. */
  predictions: [string, string, string][] | null;
};

/**
 * Everything a profile read needs from Postgres, for a batch of ids in one statement: each id
 * (`$1`, in order; `ord` numbers them from 1) resolved through `identities`, then the person's
 * row and the parts kept beside it (anonymous ids, event counts, follows, stored predictions),
 * each an indexed lookup on the profile key. An id Postgres does not know has no row.
 *
 * The person's row is a LATERAL subquery with `LIMIT 1` (the key is the primary key, so it
 * changes no answer) so that the planner cannot flatten it into a join: as a join, the prepared
 * statement's generic plan (which guesses 10 ids) hashed the whole `people` table on every
 * execution whenever it was small enough (at 2 000 people, 0.9 ms of a 16-id statement's 1.5 ms).
 * As a LATERAL subquery it is one primary-key lookup per id, whatever the table's size.
 *
 * The id's own `identities` row (`r`, LATERAL with `LIMIT 1` for the same reason) gives both the
 * profile key it resolves to and, when the id is that key (almost every read), the key's kind:
 * one lookup of `identities_pkey` instead of two; only a merged id looks its key's kind up again.
 */
export const FACTS_SQL = `SELECT q.ord::int AS ord, p.profile_key, p.traits, p.first_seen_at, p.last_active_at, p.purchases, p.monetary_total, p.stage, p.stage_since,
         p.stage_evaluated_at, p.value_tier, p.social_tier, p.personalization,
         CASE WHEN q.id = p.profile_key THEN r.kind ELSE (SELECT kind FROM identities i WHERE i.id = p.profile_key) END AS key_kind,
         array(SELECT i.id FROM identities i WHERE i.profile_key = p.profile_key AND i.kind = 'anonymous' ORDER BY i.id) AS anonymous_ids,
         (SELECT jsonb_object_agg(type, n) FROM event_counts c WHERE c.profile_key = p.profile_key) AS events,
         (SELECT count(*) FROM follows f WHERE f.profile_key = p.profile_key AND f.following) AS follow_count,
         (SELECT jsonb_agg(jsonb_build_object('type', f.target_type, 'id', f.target_id,
                   'since', to_char(f.since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')) ORDER BY f.since DESC)
          FROM (SELECT * FROM follows f WHERE f.profile_key = p.profile_key AND f.following
                ORDER BY f.since DESC LIMIT ${RECENT_FOLLOWS}) f) AS recent_follows,
         (SELECT array_agg(ARRAY[t.trait, t.value, t.confidence::text]) FROM predicted_traits t WHERE t.profile_key = p.profile_key) AS predictions
  FROM unnest($1::text[]) WITH ORDINALITY AS q(id, ord)
  LEFT JOIN LATERAL (SELECT i.profile_key, i.kind FROM identities i WHERE i.id = q.id LIMIT 1) r ON true
  CROSS JOIN LATERAL (SELECT p.profile_key, p.traits, p.first_seen_at, p.last_active_at, p.purchases, p.monetary_total,
           p.stage, p.stage_since, p.stage_evaluated_at, p.value_tier, p.social_tier, p.personalization
    FROM people p WHERE p.profile_key = coalesce(r.profile_key, q.id) LIMIT 1) p`;

function toFacts(r: FactsRow): ProfileFacts {
  return {
    profileKey: r.profile_key,
    userId: r.key_kind === 'user' ? r.profile_key : null,
    anonymousIds: r.anonymous_ids,
    traits: r.traits,
    lifecycle: { stage: r.stage, since: r.stage_since, evaluatedAt: r.stage_evaluated_at },
    tiers: { value: r.value_tier, social: r.social_tier },
    stats: {
      firstSeenAt: r.first_seen_at,
      lastActiveAt: r.last_active_at,
      events: r.events ?? {},
      purchases: r.purchases,
      monetaryTotal: r.monetary_total,
    },
    follows: { count: r.follow_count, recent: r.recent_follows ?? [] },
    personalization: r.personalization,
    // parseFloat of Postgres' text for a real: what the driver does for a real column
    predictions: (r.predictions ?? []).map(([trait, value, confidence]) => ({
      trait,
      value,
      confidence: parseFloat(confidence),
    })),
  };
}

type Waiter = { id: string; resolve: (f: ProfileFacts | undefined) => void; reject: (err: unknown) => void };

/**
 * Reads a person's facts, stage and tiers. Any id resolves through `identities`, so an
 * anonymousId that was merged into a user answers with that user's profile.
 *
 * `get` is one statement per store read, and under load one statement for many reads: the ids
 * asked for in the same turn of the event loop leave together (up to MAX_BATCH), and while
 * MAX_IN_FLIGHT statements are out the next ids wait for one of them and leave as the next batch.
 * A lone read waits for nothing (the batch leaves on `setImmediate`, after the turn's I/O). Each
 * statement costs a pool checkout, a socket write, a parse of its answer and the executor's
 * start-up; batching pays those once per batch (BENCHMARKS.md "Reads").
 */
export function createFactsReader(pool: Pool) {
  let pending: Waiter[] = [];
  let scheduled = false;
  let inFlight = 0;

  const flush = () => {
    scheduled = false;
    while (pending.length > 0 && inFlight < MAX_IN_FLIGHT) {
      const batch = pending.length <= MAX_BATCH ? pending : pending.slice(0, MAX_BATCH);
      pending = pending.length <= MAX_BATCH ? [] : pending.slice(MAX_BATCH);
      inFlight++;
      // One named statement per connection: Postgres parses and plans it once, then only binds the ids.
      pool
        .query<FactsRow>({
          name: STATEMENT,
          text: FACTS_SQL,
          values: [batch.map((w) => w.id)],
          // timestamps straight to the ISO text the answer prints, no Date in between
          types: isoTimestampTypes,
        })
        .then(
          ({ rows }) => {
            const found: (FactsRow | undefined)[] = new Array(batch.length);
            for (const r of rows) found[r.ord - 1] = r;
            batch.forEach((w, i) => {
              const r = found[i];
              w.resolve(r === undefined ? undefined : toFacts(r));
            });
          },
          (err: unknown) => batch.forEach((w) => w.reject(err)),
        )
        .finally(() => {
          inFlight--;
          if (pending.length > 0 && !scheduled) {
            scheduled = true;
            setImmediate(flush);
          }
        });
    }
  };

  return {
    /**
     * Opens the FACTS_CONNECTIONS connections `get` uses at once (fewer if the pool has fewer) and prepares its statement on each
     * (run with no ids), so that the first reads after a start neither open a connection nor plan
     * the statement. With a pool that keeps them (`createPool`'s `min`) no later read does either:
     * a connection opened mid-load cost the reads waiting on it 35-440 ms on a busy machine
     * (BENCHMARKS.md "Reads", issue 21).
     */
    async warm(): Promise<void> {
      // All held at once, so that the pool opens that many (never more than it may: holding its
      // every connection while asking for another would wait forever); every one acquired is released.
      const n = Math.min(FACTS_CONNECTIONS, pool.options.max ?? FACTS_CONNECTIONS);
      const acquired = await Promise.allSettled(Array.from({ length: n }, () => pool.connect()));
      const clients = acquired.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      const prepared = await Promise.allSettled(
        clients.map((c) => c.query({ name: STATEMENT, text: FACTS_SQL, values: [[]], types: isoTimestampTypes })),
      );
      // a connection whose statement failed is closed, not kept
      clients.forEach((c, i) => {
        const r = prepared[i]!;
        c.release(r.status === 'rejected' ? (r.reason as Error) : undefined);
      });
      const failed = [...acquired, ...prepared].find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    },

    /** The profile key `id` resolves to, when Postgres knows the person (the same rule as `get`'s 404). */
    async profileKeyOf(id: string): Promise<string | undefined> {
      const { rows } = await pool.query<{ profile_key: string }>(
        `SELECT p.profile_key FROM people p
         WHERE p.profile_key = coalesce((SELECT profile_key FROM identities WHERE id = $1), $1)`,
        [id],
      );
      return rows[0]?.profile_key;
    },

    get(id: string): Promise<ProfileFacts | undefined> {
      return new Promise((resolve, reject) => {
        pending.push({ id, resolve, reject });
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      });
    },
  };
}

/** Answers when Postgres answers: the readiness check of every service that uses this store. */
export async function pingPostgres(pool: Pool): Promise<void> {
  await pool.query('SELECT 1');
}
