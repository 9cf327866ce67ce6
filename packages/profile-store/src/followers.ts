import { DAY_MS } from '@pstream/events';
import type { Pool } from '@pstream/platform';

export type Target = { type: string; id: string };

/** A target's follower aggregates as stored (migration 006), before any presentation. */
export type FollowerMix = {
  followers: number;
  /** facet → value → count, only values with a count above zero. */
  facets: Record<string, Record<string, number>>;
  /**
   * The last `days` UTC days, oldest first, every day present: changes of the follow set
   * (migration 020), so Σ follows − Σ unfollows over them is the change in `followers`.
   */
  daily: { date: string; follows: number; unfollows: number }[];
};

/** Overlap of two targets' current followers. `exact` is false when both came from the bottom-k sketch. */
export type Overlap = { a: number; b: number; both: number; jaccard: number; exact: boolean };

/**
 * Follower insight reads (§5.5). Every answer comes from aggregates the triggers of migration 006
 * keep current in the segmenter's own transactions (exact), or from the first k followers in the
 * fixed hash order of the `follows_sample` index (a uniform sample; exact while a target has at
 * most k followers). Nothing here scans a target's followers.
 */
export function createFollowersReader(pool: Pool) {
  return {
    async mix(target: Target, nowMs: number, days = 30): Promise<FollowerMix> {
      const today = Math.floor(nowMs / DAY_MS) * DAY_MS;
      const first = new Date(today - (days - 1) * DAY_MS).toISOString().slice(0, 10);
      const [mix, daily] = await Promise.all([
        pool.query<{ facet: string; value: string; n: number }>(
          'SELECT facet, value, n FROM follower_mix WHERE target_type = $1 AND target_id = $2 AND n > 0',
          [target.type, target.id],
        ),
        pool.query<{ day: string; follows: number; unfollows: number }>(
          `SELECT to_char(day, 'YYYY-MM-DD') AS day, follows, unfollows FROM follow_daily
           WHERE target_type = $1 AND target_id = $2 AND day >= $3::date`,
          [target.type, target.id, first],
        ),
      ]);
      const facets: Record<string, Record<string, number>> = {};
      for (const r of mix.rows) (facets[r.facet] ??= {})[r.value] = r.n;
      const byDay = new Map(daily.rows.map((r) => [r.day, r]));
      const out: FollowerMix['daily'] = [];
      for (let i = days - 1; i >= 0; i--) {
        const date = new Date(today - i * DAY_MS).toISOString().slice(0, 10);
        const r = byDay.get(date);
        out.push({ date, follows: r?.follows ?? 0, unfollows: r?.unfollows ?? 0 });
      }
      const followers = facets.followers?.[''] ?? 0;
      delete facets.followers;
      return { followers, facets, daily: out };
    },

    /**
     * Up to `k` current followers who allow personalization (§4.5), in the fixed hash order:
     * a uniform pseudo-random sample, the same one on every call while followers do not change.
     */
    async personalizedSample(target: Target, k: number): Promise<string[]> {
      const { rows } = await pool.query<{ profile_key: string }>(
        `SELECT f.profile_key FROM follows f JOIN people p ON p.profile_key = f.profile_key
         WHERE f.target_type = $1 AND f.target_id = $2 AND f.following AND p.personalization
         ORDER BY hashtext(f.profile_key), f.profile_key LIMIT $3`,
        [target.type, target.id, k],
      );
      return rows.map((r) => r.profile_key);
    },

    /**
     * Followers of both `a` and `b`. Exact while both have at most `k` followers (the bottom-k
     * samples are then the whole sets); beyond, the bottom-k sketch of the union (MinHash with
     * one hash) estimates the Jaccard index, and `both` follows from it and the exact counts.
     */
    async overlap(a: Target, b: Target, k: number): Promise<Overlap> {
      const { rows } = await pool.query<{
        na: number;
        nb: number;
        exact_both: number;
        sketch_both: number;
        sketch_union: number;
      }>(
        `WITH sa AS (SELECT profile_key, hashtext(profile_key) AS h FROM follows
                     WHERE target_type = $1 AND target_id = $2 AND following ORDER BY 2, 1 LIMIT $5),
              sb AS (SELECT profile_key, hashtext(profile_key) AS h FROM follows
                     WHERE target_type = $3 AND target_id = $4 AND following ORDER BY 2, 1 LIMIT $5),
              u AS (SELECT profile_key, h FROM (SELECT * FROM sa UNION SELECT * FROM sb) x ORDER BY h, profile_key LIMIT $5)
         SELECT coalesce((SELECT n FROM follower_mix WHERE target_type = $1 AND target_id = $2 AND facet = 'followers'), 0) AS na,
                coalesce((SELECT n FROM follower_mix WHERE target_type = $3 AND target_id = $4 AND facet = 'followers'), 0) AS nb,
                (SELECT count(*) FROM sa JOIN sb USING (profile_key)) AS exact_both,
                (SELECT count(*) FROM u WHERE profile_key IN (SELECT profile_key FROM sa) AND profile_key IN (SELECT profile_key FROM sb)) AS sketch_both,
                (SELECT count(*) FROM u) AS sketch_union`,
        [a.type, a.id, b.type, b.id, k],
      );
      const r = rows[0]!;
      if (r.na <= k && r.nb <= k) {
        const union = r.na + r.nb - r.exact_both;
        return { a: r.na, b: r.nb, both: r.exact_both, jaccard: union === 0 ? 0 : r.exact_both / union, exact: true };
      }
      const jaccard = r.sketch_union === 0 ? 0 : r.sketch_both / r.sketch_union;
      const both = Math.min(r.na, r.nb, Math.round((jaccard * (r.na + r.nb)) / (1 + jaccard)));
      return { a: r.na, b: r.nb, both, jaccard, exact: false };
    },
  };
}

export type FollowersReader = ReturnType<typeof createFollowersReader>;
