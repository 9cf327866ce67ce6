import { DAY_MS } from '@pstream/events';
import type { Pool } from '@pstream/platform';
import { utcDay } from './audience-sql';
import { SOCIAL_TYPES_SQL } from './fold';

/** The facts of the similarity vector (docs/api.md §5.3) that Postgres holds. */
export function createSimilarityFacts(pool: Pool) {
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
      const out = new Map<string, { spend: number; social: number }>(keys.map((k) => [k, { spend: 0, social: 0 }]));
      if (keys.length === 0) return out;
      const { rows } = await pool.query<{ k: string; spend: string | null; social: string | null }>(
        `SELECT k,
                (SELECT sum(base_amount) FROM purchases p WHERE p.profile_key = k AND p.occurred_at > $2) AS spend,
                (SELECT sum(n) FROM activity a WHERE a.profile_key = k AND a.type IN (${SOCIAL_TYPES_SQL}) AND a.day >= $3 AND a.target_type IS NOT NULL) AS social
         FROM unnest($1::text[]) k`,
        [keys, new Date(nowMs - 365 * DAY_MS).toISOString(), utcDay(nowMs - 29 * DAY_MS)],
      );
      for (const r of rows) out.set(r.k, { spend: Number(r.spend ?? 0), social: Number(r.social ?? 0) });
      return out;
    },
  };
}
