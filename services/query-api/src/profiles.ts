import type { Pool } from '@pstream/platform';

export type Facts = {
  firstSeenAt: string;
  lastActiveAt: string;
  events: Record<string, number>;
  purchases: number;
  monetaryTotal: number;
  stage: string | null;
  stageSince: string | null;
  stageEvaluatedAt: string;
};

/** Reads a person's facts and lifecycle from Postgres (written by the segmenter). */
export function createFactsReader(pool: Pool) {
  return {
    async get(profileKey: string): Promise<Facts | undefined> {
      const { rows } = await pool.query<{
        first_seen_at: Date;
        last_active_at: Date;
        purchases: number;
        monetary_total: number;
        stage: string | null;
        stage_since: Date | null;
        stage_evaluated_at: Date;
        events: Record<string, number> | null;
      }>(
        `SELECT p.first_seen_at, p.last_active_at, p.purchases, p.monetary_total, p.stage, p.stage_since, p.stage_evaluated_at,
                (SELECT jsonb_object_agg(type, n) FROM event_counts c WHERE c.profile_key = p.profile_key) AS events
         FROM people p WHERE p.profile_key = $1`,
        [profileKey],
      );
      const r = rows[0];
      if (!r) return undefined;
      return {
        firstSeenAt: r.first_seen_at.toISOString(),
        lastActiveAt: r.last_active_at.toISOString(),
        events: r.events ?? {},
        purchases: r.purchases,
        monetaryTotal: r.monetary_total,
        stage: r.stage,
        stageSince: r.stage_since?.toISOString() ?? null,
        stageEvaluatedAt: r.stage_evaluated_at.toISOString(),
      };
    },
  };
}
