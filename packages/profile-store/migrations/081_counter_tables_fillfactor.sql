-- Room for the follower counters' new row versions on their own page (issue 21; packages/
-- profile-store/README.md, "Flat over time"). Unqualified names: the runner sets search_path.
--
-- follower_mix (per target × facet × value) and follow_daily (per target × UTC day) are rewritten by
-- every chunk that brings a follow or changes a follower's stage or value tier, always the same few
-- rows (the popular targets'), each at most once per statement. Full pages made half those updates
-- non-HOT (bench:segmenter: 3 260 updates, 1 752 HOT, 93 live rows): each left a new index entry,
-- and every later ON CONFLICT visited all of a key's entries and dead versions — 2 208 buffers and
-- 11 ms for the 45 conflicting rows of one chunk. Half of each page free keeps the rewrite on the
-- page, where the next reader prunes the old version. Existing pages keep their layout until
-- rewritten (VACUUM FULL); the tables hold a few rows per target.
ALTER TABLE follower_mix SET (fillfactor = 50);
ALTER TABLE follow_daily SET (fillfactor = 50);
