-- The follower-mix triggers on `people` (migration 006), with the same rows in and the same counts
-- out, but reading each changed person's follows through the index, one lookup per person.
-- Unqualified names: the runner sets search_path to the deployment's schema.
--
-- Measured (EXPLAIN ANALYZE through auto_explain, a 500-event chunk over 50 000 people): the planner
-- guessed ~1 200 rows for the join of the statement's old and new rows (it cannot see that most
-- updates change no facet, and none did) and merge-joined them with ALL current follows — a
-- sequential scan and sort of `follows` on every chunk, 30–70 ms at 5 000 follows and growing with
-- every follow ever made. A LATERAL subquery behind OFFSET 0 cannot be flattened into a join: it
-- runs per changed person, on the `follows_recent (profile_key, since DESC) WHERE following` index.
-- The same guess then prices the lookups above jit_above_cost, and compiling the statement took
-- ~95 ms of ~99: the functions run with JIT off (a few hundred rows never repay a compilation).

CREATE OR REPLACE FUNCTION people_mix_ins() RETURNS trigger LANGUAGE plpgsql SET jit = off AS $$
BEGIN
  INSERT INTO follower_mix AS m (target_type, target_id, facet, value, n)
  SELECT f.target_type, f.target_id, x.facet, x.value, sum(d.sign)
  FROM (SELECT profile_key, stage, value_tier, traits, 1 AS sign FROM new_rows
        UNION ALL SELECT profile_key, NULL, NULL, '{}'::jsonb, -1 FROM new_rows) d
  CROSS JOIN LATERAL (SELECT target_type, target_id FROM follows WHERE profile_key = d.profile_key AND following OFFSET 0) f
  CROSS JOIN LATERAL follower_facets(d.stage, d.value_tier, d.traits) x
  GROUP BY 1, 2, 3, 4 HAVING sum(d.sign) <> 0
  ON CONFLICT (target_type, target_id, facet, value) DO UPDATE SET n = m.n + excluded.n;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION people_mix_del() RETURNS trigger LANGUAGE plpgsql SET jit = off AS $$
BEGIN
  INSERT INTO follower_mix AS m (target_type, target_id, facet, value, n)
  SELECT f.target_type, f.target_id, x.facet, x.value, sum(d.sign)
  FROM (SELECT profile_key, stage, value_tier, traits, -1 AS sign FROM old_rows
        UNION ALL SELECT profile_key, NULL, NULL, '{}'::jsonb, 1 FROM old_rows) d
  CROSS JOIN LATERAL (SELECT target_type, target_id FROM follows WHERE profile_key = d.profile_key AND following OFFSET 0) f
  CROSS JOIN LATERAL follower_facets(d.stage, d.value_tier, d.traits) x
  GROUP BY 1, 2, 3, 4 HAVING sum(d.sign) <> 0
  ON CONFLICT (target_type, target_id, facet, value) DO UPDATE SET n = m.n + excluded.n;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION people_mix_upd() RETURNS trigger LANGUAGE plpgsql SET jit = off AS $$
BEGIN
  INSERT INTO follower_mix AS m (target_type, target_id, facet, value, n)
  SELECT f.target_type, f.target_id, x.facet, x.value, sum(d.sign)
  FROM (WITH ch AS (
          SELECT o.profile_key, o.stage AS os, o.value_tier AS ot, o.traits AS otr, n.stage AS ns, n.value_tier AS nt, n.traits AS ntr
          FROM old_rows o JOIN new_rows n USING (profile_key)
          WHERE (o.stage, o.value_tier, o.traits->'gender', o.traits->'birthYear', o.traits->'age', o.traits->'city')
                IS DISTINCT FROM (n.stage, n.value_tier, n.traits->'gender', n.traits->'birthYear', n.traits->'age', n.traits->'city'))
        SELECT profile_key, os AS stage, ot AS value_tier, otr AS traits, -1 AS sign FROM ch
        UNION ALL SELECT profile_key, ns, nt, ntr, 1 FROM ch) d
  CROSS JOIN LATERAL (SELECT target_type, target_id FROM follows WHERE profile_key = d.profile_key AND following OFFSET 0) f
  CROSS JOIN LATERAL follower_facets(d.stage, d.value_tier, d.traits) x
  GROUP BY 1, 2, 3, 4 HAVING sum(d.sign) <> 0
  ON CONFLICT (target_type, target_id, facet, value) DO UPDATE SET n = m.n + excluded.n;
  RETURN NULL;
END $$;
