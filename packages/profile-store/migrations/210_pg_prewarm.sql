-- pg_prewarm (PostgreSQL contrib) for the query API's start-up prewarm (issue 21 item 3;
-- src/prewarm.ts; docs/operations.md "Prewarming"; BENCHMARKS.md "Previews and similar people at
-- 1 M: the first read of pages").
--
-- An extension belongs to the database, not to a schema of ours: it goes to `public` (where every
-- deployment schema of the database finds it, and dropping a deployment's schema does not drop
-- it), else to the first schema of the search_path. Where it cannot be created — not installed
-- (no contrib package), or the migrating role may not create it (pg_prewarm is not a trusted
-- extension: a superuser, or a managed service's admin role, creates it) — the migration only says
-- so: the prewarm is skipped and the first reads of pages are slower, nothing else changes.
-- Idempotent: IF NOT EXISTS, and a second schema of the same database finds it there.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'public') THEN
    CREATE EXTENSION IF NOT EXISTS pg_prewarm SCHEMA public;
  ELSE
    CREATE EXTENSION IF NOT EXISTS pg_prewarm;
  END IF;
EXCEPTION
  -- another schema's migration created it at the same instant (both saw none): it exists now
  WHEN unique_violation THEN NULL;
  WHEN insufficient_privilege OR undefined_file OR feature_not_supported OR invalid_schema_name THEN
    RAISE NOTICE 'pg_prewarm not created (%): the query API will not prewarm (docs/operations.md "Prewarming")', SQLERRM;
END
$$;
