-- The apply path without per-row reference checks (issue 21; packages/profile-store/README.md,
-- "apply path"). Unqualified names: the runner sets search_path to the deployment's schema.
--
-- event_counts and purchases referenced people (ON DELETE CASCADE, deferred to commit by 007). A
-- foreign key is a row trigger: every inserted count or purchase queued a check that ran at COMMIT
-- as its own query (`SELECT 1 FROM people … FOR KEY SHARE`) — ≈ 490 per 500-event chunk of the
-- demo's traffic (auto_explain, log_nested_statements), about one per event, for a guarantee the
-- apply path gives by construction: the same transaction upserts the person's row for every key it
-- writes counts or purchases under (lifecycle.ts evaluatePeople, with the chunk's gains), and the
-- two places that delete a person (a merge, identity.ts mergeProfiles; an erasure, privacy.ts
-- deletePersonRows) move or delete that person's counts and purchases explicitly, before the row.
ALTER TABLE event_counts DROP CONSTRAINT event_counts_profile_key_fkey;
ALTER TABLE purchases DROP CONSTRAINT purchases_profile_key_fkey;
