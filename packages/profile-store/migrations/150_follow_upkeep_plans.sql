-- The follow upkeep's fixed cost per statement (issue 21 item 1; BENCHMARKS.md "The follow upkeep's
-- plans kept"). Same statements, same rows in, same counts out; only when they are planned and
-- whether they run at all with nothing to count. Unqualified names: the runner sets search_path to
-- the deployment's schema.
--
-- follow_daily_move (migration 020) was `LANGUAGE sql`: its body — one statement of six CTEs — was
-- parsed, analysed and planned again at every call, ≈ 0.4 ms before any row (0.42 ms for an insert
-- of no history rows, 0.92 ms for 16, measured in one session). In PL/pgSQL the statement's plan is
-- kept for the session (after five custom plans, a generic one when it costs no more). That is safe
-- here because nothing in the plan's shape depends on sizes: the inputs are arrays, not transition
-- tables (which migration 080 had to plan per call), each pair's history is read per person in a
-- subquery the planner cannot flatten (OFFSET 0), and `before` is one grouping. An empty call
-- returns before the statement. Measured, same session, alternating: 16 rows 0.92 → 0.43 ms, none
-- 0.42 → 0.007 ms; 10 000 rows at once 193 → 192 ms; follow_daily identical (md5 of its rows).
CREATE OR REPLACE FUNCTION follow_daily_move(removed follow_history[], added follow_history[]) RETURNS void
LANGUAGE plpgsql SET jit = off AS $fn$
BEGIN
  IF cardinality(removed) = 0 AND cardinality(added) = 0 THEN
    RETURN;
  END IF;

  WITH pairs AS (
    SELECT DISTINCT profile_key, target_type, target_id FROM (SELECT * FROM unnest(removed) UNION ALL SELECT * FROM unnest(added)) m
  ),
  -- each pair's person read by follow_history_by_person, in a subquery the planner cannot turn into
  -- a join or give the target condition to (OFFSET 0): without statistics it read each pair through
  -- follow_history_by_target instead — all of a popular target's history once per pair (73 s for
  -- a 10 000-row INSERT on one shop)
  after AS (
    SELECT h.* FROM pairs p
    CROSS JOIN LATERAL (SELECT * FROM follow_history h WHERE h.profile_key = p.profile_key OFFSET 0) h
    WHERE h.target_type = p.target_type AND h.target_id = p.target_id
  ),
  -- before = after − added + removed, as multisets: one grouping, linear, where an anti-join of
  -- `after` with `added` became a nested loop (the planner cannot size unnest(): 1.4 M comparisons
  -- for a 500-event chunk)
  before AS (
    SELECT source, event_id, profile_key, target_type, target_id, action, at
    FROM (SELECT *, 1 AS k FROM after UNION ALL SELECT *, -1 FROM unnest(added) UNION ALL SELECT *, 1 FROM unnest(removed)) x
    GROUP BY source, event_id, profile_key, target_type, target_id, action, at HAVING sum(k) > 0
  ),
  states AS (
    SELECT 1 AS sign, source, event_id, profile_key, target_type, target_id, action, at FROM after
    UNION ALL SELECT -1, * FROM before
  ),
  changes AS (
    SELECT sign, target_type, target_id, (at AT TIME ZONE 'UTC')::date AS day, action,
           -- byte order ("C"): the sort is most of the cost, and any fixed order serves
           action <> coalesce(lag(action) OVER (PARTITION BY sign, profile_key COLLATE "C", target_type COLLATE "C", target_id COLLATE "C"
                                                ORDER BY at, action DESC, source COLLATE "C", event_id COLLATE "C"), 'unfollow') AS changed
    FROM states
  ),
  delta AS (
    SELECT target_type, target_id, day,
           coalesce(sum(sign) FILTER (WHERE action = 'follow'), 0) AS follows,
           coalesce(sum(sign) FILTER (WHERE action = 'unfollow'), 0) AS unfollows
    FROM changes WHERE changed GROUP BY 1, 2, 3
  )
  INSERT INTO follow_daily AS d (target_type, target_id, day, follows, unfollows)
  SELECT * FROM delta WHERE follows <> 0 OR unfollows <> 0
  ON CONFLICT (target_type, target_id, day) DO UPDATE
    SET follows = d.follows + excluded.follows, unfollows = d.unfollows + excluded.unfollows;
END $fn$;

-- The follower-mix triggers of `follows` (migration 080) count only rows that are or were
-- `following`; a statement with none (an upsert's UPDATE trigger when every follow was new, its
-- INSERT trigger when every pair existed, unfollows of pairs not followed) planned and ran their
-- statement for nothing, ≈ 0.3–1 ms each. They now return first when their transition tables hold
-- no such row: a scan of the transition table itself, whose plan has no shape to go stale.

CREATE OR REPLACE FUNCTION follows_mix_ins() RETURNS trigger LANGUAGE plpgsql SET jit = off AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM new_rows WHERE following) THEN
    RETURN NULL;
  END IF;
  EXECUTE $q$
  INSERT INTO follower_mix AS m (target_type, target_id, facet, value, n)
  SELECT d.target_type, d.target_id, x.facet, x.value, sum(d.sign)
  FROM (SELECT target_type, target_id, profile_key, 1 AS sign FROM new_rows WHERE following) d
  LEFT JOIN people p ON p.profile_key = d.profile_key
  CROSS JOIN LATERAL follower_facets(p.stage, p.value_tier, coalesce(p.traits, '{}')) x
  GROUP BY 1, 2, 3, 4 HAVING sum(d.sign) <> 0
  ON CONFLICT (target_type, target_id, facet, value) DO UPDATE SET n = m.n + excluded.n
  $q$;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION follows_mix_del() RETURNS trigger LANGUAGE plpgsql SET jit = off AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM old_rows WHERE following) THEN
    RETURN NULL;
  END IF;
  EXECUTE $q$
  INSERT INTO follower_mix AS m (target_type, target_id, facet, value, n)
  SELECT d.target_type, d.target_id, x.facet, x.value, sum(d.sign)
  FROM (SELECT target_type, target_id, profile_key, -1 AS sign FROM old_rows WHERE following) d
  LEFT JOIN people p ON p.profile_key = d.profile_key
  CROSS JOIN LATERAL follower_facets(p.stage, p.value_tier, coalesce(p.traits, '{}')) x
  GROUP BY 1, 2, 3, 4 HAVING sum(d.sign) <> 0
  ON CONFLICT (target_type, target_id, facet, value) DO UPDATE SET n = m.n + excluded.n
  $q$;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION follows_mix_upd() RETURNS trigger LANGUAGE plpgsql SET jit = off AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM old_rows WHERE following) AND NOT EXISTS (SELECT 1 FROM new_rows WHERE following) THEN
    RETURN NULL;
  END IF;
  EXECUTE $q$
  INSERT INTO follower_mix AS m (target_type, target_id, facet, value, n)
  SELECT d.target_type, d.target_id, x.facet, x.value, sum(d.sign)
  FROM (SELECT target_type, target_id, profile_key, -1 AS sign FROM old_rows WHERE following
        UNION ALL SELECT target_type, target_id, profile_key, 1 FROM new_rows WHERE following) d
  LEFT JOIN people p ON p.profile_key = d.profile_key
  CROSS JOIN LATERAL follower_facets(p.stage, p.value_tier, coalesce(p.traits, '{}')) x
  GROUP BY 1, 2, 3, 4 HAVING sum(d.sign) <> 0
  ON CONFLICT (target_type, target_id, facet, value) DO UPDATE SET n = m.n + excluded.n
  $q$;
  RETURN NULL;
END $$;
