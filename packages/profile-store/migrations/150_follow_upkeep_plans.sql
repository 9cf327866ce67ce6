-- The follow upkeep's fixed cost per statement (issue 21 item 1; BENCHMARKS.md "The dedupe records
-- without speculative insertion, the follow upkeep's plans kept"). The same statements, the same
-- rows in and counts out; only when they are planned and whether they run with nothing to count.
-- The new bodies are made from the current ones (pg_proc.prosrc), so the statements are exactly
-- those of migrations 020 and 080. Unqualified names: the runner sets search_path to the
-- deployment's schema.
--
-- follow_daily_move (migration 020) was `LANGUAGE sql`: its body — one statement of six CTEs — was
-- parsed, analysed and planned again at every call, ≈ 0.4 ms before any row (an insert of no
-- history rows 0.42 ms, of 16 rows 0.92 ms, measured in one session). In PL/pgSQL the statement's
-- plan is kept for the session (after five custom plans, a generic one when it costs no more). That
-- is safe here because nothing in the plan's shape depends on sizes: the inputs are arrays, not
-- transition tables (which migration 080 had to plan per call), each pair's history is read per
-- person in a subquery the planner cannot flatten (OFFSET 0), and `before` is one grouping. An
-- empty call returns before the statement. Measured in one session, alternating with the old
-- function on the same rows: 16 rows 0.92 → 0.43 ms, none 0.42 → 0.007 ms, 10 000 rows at once
-- (after the plan was kept) 193 → 192 ms, a merge's update 1.4 → 0.8 ms; follow_daily identical.
DO $mig$
DECLARE
  body text := (SELECT prosrc FROM pg_proc WHERE oid = 'follow_daily_move(follow_history[], follow_history[])'::regprocedure);
BEGIN
  EXECUTE format($f$
    CREATE OR REPLACE FUNCTION follow_daily_move(removed follow_history[], added follow_history[]) RETURNS void
    LANGUAGE plpgsql SET jit = off AS %L$f$,
    E'\nBEGIN\n  IF cardinality(removed) = 0 AND cardinality(added) = 0 THEN\n    RETURN;\n  END IF;\n' || body || E'END\n');
END $mig$;

-- The follower-mix triggers of `follows` (migrations 006, 080) count only rows that are or were
-- `following`; a statement with none (an upsert's UPDATE trigger when every follow was new, its
-- INSERT trigger when every pair existed, unfollows of pairs not followed) planned and ran their
-- statement for nothing. They now return first when their transition tables hold no such row: a
-- scan of the transition table itself, whose plan has no shape to go stale.
DO $mig$
DECLARE
  f record;
BEGIN
  FOR f IN
    SELECT * FROM (VALUES
      ('follows_mix_ins', 'NOT EXISTS (SELECT 1 FROM new_rows WHERE following)'),
      ('follows_mix_del', 'NOT EXISTS (SELECT 1 FROM old_rows WHERE following)'),
      ('follows_mix_upd', 'NOT EXISTS (SELECT 1 FROM old_rows WHERE following) AND NOT EXISTS (SELECT 1 FROM new_rows WHERE following)')
    ) AS x(name, nothing)
  LOOP
    EXECUTE format($f$CREATE OR REPLACE FUNCTION %I() RETURNS trigger LANGUAGE plpgsql SET jit = off AS %L$f$,
      f.name,
      regexp_replace((SELECT prosrc FROM pg_proc WHERE oid = (f.name || '()')::regprocedure), '^\s*BEGIN\n',
                     E'\nBEGIN\n  IF ' || f.nothing || E' THEN\n    RETURN NULL;\n  END IF;\n'));
  END LOOP;
END $mig$;
