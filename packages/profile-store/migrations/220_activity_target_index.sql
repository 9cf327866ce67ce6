-- The `did … target` leaf's index keyed by the target alone (issue 21 item 1; docs/api.md §5.4;
-- BENCHMARKS.md "The activity indexes: who reads each, what each costs the apply"; docs/operations.md
-- "Postgres upkeep": its one-time build on a large table).
-- Unqualified names: the runner sets search_path to the deployment's schema.
--
-- `activity_by_target (type, target_type, target_id, day)` held one 4-column entry per activity row
-- (every row the apply writes has a target), nearly all distinct, so it could not deduplicate: the
-- costliest of `activity`'s indexes to insert into (≈ 5–8 µs a row against ≈ 1 for the heap, in
-- isolation at 400 000 rows; its pages split as every target's latest day grows). Keyed by
-- `target_id` alone, the entries of a target are one key, deduplicated into posting lists (3.5 MB
-- against 11 MB, both built on the 400 000 rows of 100 000 seeded people): ≈ 2.4–3 µs a row. Its
-- one reader, the unrestricted target leaf (`type = … AND day BETWEEN … AND target_type = … AND
-- target_id = …`), now reads the target's rows of every type and day and checks type, target type
-- and day on the heap; for a target with many rows the planner ANDs the bitmap with
-- `activity_by_type_day`'s (type, day range), so the heap pages read are about those of the smaller
-- of the two. The same rows, so the same answers (measured: 0.07 → 0.10–0.18 ms for a plain target,
-- 0.4 → 1.5 ms for one with 40 000 rows, at 100 000 people). Every other
-- reader (the type and tag leaves, restricted leaves, explain, /similar, retention) never used it.
-- Idempotent: the new index is created if missing (built again when an interrupted
-- `CREATE INDEX CONCURRENTLY` by hand left it INVALID, docs/operations.md), then the old one dropped if
-- present; names qualified with current_schema(), so a re-run never touches another deployment's
-- relations of the same name in `public`. The DROP holds an exclusive lock on `activity` until the
-- migration commits (queued behind running readers, briefly); no ANALYZE: a new index needs none, the
-- column statistics are unchanged.
DO $$
DECLARE
  s text := current_schema();
BEGIN
  IF EXISTS (
    SELECT 1 FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = s AND c.relname = 'activity_by_target_id' AND NOT i.indisvalid
  ) THEN
    EXECUTE format('DROP INDEX %I.activity_by_target_id', s);
  END IF;
  EXECUTE format('CREATE INDEX IF NOT EXISTS activity_by_target_id ON %I.activity (target_id) WHERE target_type IS NOT NULL', s);
  EXECUTE format('DROP INDEX IF EXISTS %I.activity_by_target', s);
END
$$;
