-- The follower-mix triggers of `people` (migrations 006, 080) planned and ran their statement even
-- when their transition table was empty (issue 21 item 1; BENCHMARKS.md "The apply's fixed costs").
-- The people write is an INSERT ... ON CONFLICT DO UPDATE, so BOTH its statement-level triggers
-- fire on every chunk: the INSERT one with no new rows when every person existed (most chunks once
-- a deployment runs), the UPDATE one with no old rows when every person was new. Each call planned
-- its follower_mix statement afresh (EXECUTE, migration 080) — a few tenths of a millisecond a
-- statement, whatever its rows — to count nothing. They now return first when their transition
-- table is empty: a scan of the transition table itself, whose kept plan has no shape to go stale
-- (as migration 150 did for the triggers of `follows`). The same statements, the same counts.
-- The new bodies are made from the current ones (pg_proc.prosrc). Unqualified names: the runner
-- sets search_path to the deployment's schema.
DO $mig$
DECLARE
  f record;
BEGIN
  FOR f IN
    SELECT * FROM (VALUES
      ('people_mix_ins', 'NOT EXISTS (SELECT 1 FROM new_rows)'),
      ('people_mix_del', 'NOT EXISTS (SELECT 1 FROM old_rows)'),
      ('people_mix_upd', 'NOT EXISTS (SELECT 1 FROM old_rows)')
    ) AS x(name, nothing)
  LOOP
    EXECUTE format($f$CREATE OR REPLACE FUNCTION %I() RETURNS trigger LANGUAGE plpgsql SET jit = off AS %L$f$,
      f.name,
      regexp_replace((SELECT prosrc FROM pg_proc WHERE oid = (f.name || '()')::regprocedure), '^\s*BEGIN\n',
                     E'\nBEGIN\n  IF ' || f.nothing || E' THEN\n    RETURN NULL;\n  END IF;\n'));
  END LOOP;
END $mig$;
