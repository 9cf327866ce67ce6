import { DAY_MS } from '@pstream/events';
import type { Pool } from '@pstream/platform';
import { utcDay } from './audience-sql';
import { SOCIAL_TYPES_SQL } from './fold';
import { NOT_OPTED_OUT } from './privacy';

/** What /similar reads from Postgres per person: the §5.3 vector's facts and consent (§5.7). */
export type SimilarityInputs = { spend: number; social: number; allowed: boolean };

/** The facts of the similarity vector (docs/api.md §5.3) that Postgres holds. */
export function createSimilarityFacts(pool: Pool) {
  /**
   * One statement for every key: the keys deduplicated and sorted (their index pages are then
   * walked in order, as the audience leaves do), and per key only index lookups — its identity,
   * the consent probe of the opted-out index (migration 140, no people row), the purchases of the
   * last 365 days and the social rows of the last 30 days as index-only scans of the covering
   * indexes of migration 170 (`purchases_spend`, `activity_social`: the social filter below is that
   * index's predicate, word for word, or Postgres could not use it) — no heap page per candidate.
   */
  async function read(keys: readonly string[], nowMs: number): Promise<Map<string, SimilarityInputs>> {
    const out = new Map<string, SimilarityInputs>();
    const sorted = [...new Set(keys)].sort();
    if (sorted.length === 0) return out;
    const { rows } = await pool.query<{ k: string; allowed: boolean; spend: string | null; social: string | null }>(
      `SELECT k, ${NOT_OPTED_OUT('coalesce(i.profile_key, k)')} AS allowed,
              (SELECT sum(base_amount) FROM purchases p WHERE p.profile_key = k AND p.occurred_at > $2) AS spend,
              (SELECT sum(n) FROM activity a WHERE a.profile_key = k AND a.type IN (${SOCIAL_TYPES_SQL}) AND a.day >= $3 AND a.target_type IS NOT NULL) AS social
       FROM unnest($1::text[]) k LEFT JOIN identities i ON i.id = k`,
      [sorted, new Date(nowMs - 365 * DAY_MS).toISOString(), utcDay(nowMs - 29 * DAY_MS)],
    );
    for (const r of rows)
      out.set(r.k, { spend: Number(r.spend ?? 0), social: Number(r.social ?? 0), allowed: r.allowed });
    return out;
  }
  return {
    /**
     * The non-interest components of the §5.3 vector, per person: money spent in the base currency
     * over the last 365 days and social interactions (likes, comments, shares, favorites) over the
     * current UTC day and the 29 before it (the daily aggregates).
     */
    async similarityFacts(
      keys: readonly string[],
      nowMs: number,
    ): Promise<Map<string, { spend: number; social: number }>> {
      const got = await read(keys, nowMs);
      return new Map(keys.map((k) => [k, { spend: got.get(k)?.spend ?? 0, social: got.get(k)?.social ?? 0 }]));
    },
    /**
     * `similarityFacts` and `personalizationAllowed` of the same keys in one statement (one round
     * trip, one pass over each person's index pages): what /similar reads for its candidates.
     */
    async similarityInputs(keys: readonly string[], nowMs: number): Promise<Map<string, SimilarityInputs>> {
      return read(keys, nowMs);
    },
  };
}
