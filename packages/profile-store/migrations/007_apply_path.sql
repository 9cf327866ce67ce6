-- The segmenter's leaner apply path (packages/profile-store/README.md, "apply path"). Unqualified
-- names: the runner sets search_path to the deployment's schema.

-- A chunk writes each person's row once, after its counts and purchases (facts plus evaluation in
-- one upsert, lifecycle.ts): the references to people are checked at commit, not per statement.
ALTER TABLE event_counts ALTER CONSTRAINT event_counts_profile_key_fkey DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE purchases ALTER CONSTRAINT purchases_profile_key_fkey DEFERRABLE INITIALLY DEFERRED;
