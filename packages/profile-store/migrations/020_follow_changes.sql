-- Follower changes (docs/api.md §5.5): follow_daily counts changes of the follow set, not events.
-- A follow of a target the person already follows is no follow, an unfollow of one they do not
-- follow is no unfollow, so over any span of days Σ follows − Σ unfollows is the change in the
-- number of followers. Unqualified names: the runner sets search_path to the deployment's schema.
--
-- Which events change the set is a property of each person × target history by event time (the
-- latest follow/unfollow wins, as in `follows`): an event changes it when its action differs from
-- the one before it, the state before the first being "not following". At one instant, an
-- unfollow is taken before a follow (then source, event id), a fixed order whatever the arrival.
-- A late event can turn the next one of its pair from a change into none or back, and a merge
-- interleaves two histories, so the triggers recount the whole history of every pair a
-- statement touched, before and after it, and add the difference.

-- The difference `removed` → `added` makes to follow_daily, `follow_history` holding the state after.
CREATE FUNCTION follow_daily_move(removed follow_history[], added follow_history[]) RETURNS void LANGUAGE sql AS $$
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
$$;

-- The triggers of migration 006 keep their names and now count changes; merges (an UPDATE of
-- profile_key) move histories between pairs, so they get one too.
CREATE OR REPLACE FUNCTION follow_daily_ins() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM follow_daily_move('{}', ARRAY(SELECT ROW(n.*)::follow_history FROM new_rows n));
  RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION follow_daily_del() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM follow_daily_move(ARRAY(SELECT ROW(o.*)::follow_history FROM old_rows o), '{}');
  RETURN NULL;
END $$;
CREATE FUNCTION follow_daily_upd() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM follow_daily_move(ARRAY(SELECT ROW(o.*)::follow_history FROM old_rows o), ARRAY(SELECT ROW(n.*)::follow_history FROM new_rows n));
  RETURN NULL;
END $$;
CREATE TRIGGER follow_history_daily_upd AFTER UPDATE ON follow_history
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION follow_daily_upd();

-- The rows that existed before this migration, counted again as changes: the histories of 1 000
-- people at a time (all of a person's rows in one call, so each call's "before" is empty).
DELETE FROM follow_daily;
DO $$
DECLARE
  last text := '';
  batch text[];
BEGIN
  LOOP
    SELECT array_agg(k ORDER BY k) INTO batch
    FROM (SELECT DISTINCT profile_key AS k FROM follow_history WHERE profile_key > last ORDER BY 1 LIMIT 1000) x;
    EXIT WHEN batch IS NULL;
    PERFORM follow_daily_move('{}', ARRAY(SELECT h FROM follow_history h WHERE h.profile_key = ANY(batch)));
    last := batch[array_length(batch, 1)];
  END LOOP;
END $$;
