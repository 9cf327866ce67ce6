-- A write path whose cost does not grow with the rows it already wrote (packages/profile-store/README.md,
-- "Flat over time"). Unqualified names: the runner sets search_path to the deployment's schema.
--
-- An UPDATE that changes no indexed column and finds room on its page is HOT: no new index entries,
-- and the old version is pruned on the page by the next reader, with or without VACUUM. Every
-- increment below was non-HOT before: the audience leaf indexes carried `n` (INCLUDE), and the
-- people row's next_review_at moved with every event (lifecycle.ts now only moves it earlier).

-- The leaf indexes without their INCLUDE columns: an increment of `n` no longer touches an index.
-- (A leaf reads `n` from the heap; profile_key is in the heap row already.) They are smaller too.
DROP INDEX activity_daily_by_type_day;
DROP INDEX activity_daily_by_target;
DROP INDEX tag_activity_daily_by_tag;
CREATE INDEX activity_daily_by_type_day ON activity_daily (type, day);
CREATE INDEX activity_daily_by_target ON activity_daily (type, target_type, target_id, day);
CREATE INDEX tag_activity_daily_by_tag ON tag_activity_daily (type, tag, day);

-- Room on each page for the new versions of its rows (applies to pages written from now on).
ALTER TABLE people SET (fillfactor = 70);
ALTER TABLE event_counts SET (fillfactor = 90);
ALTER TABLE activity_daily SET (fillfactor = 90);
ALTER TABLE tag_activity_daily SET (fillfactor = 90);
ALTER TABLE follows SET (fillfactor = 80);
ALTER TABLE consumer_offsets SET (fillfactor = 30);
ALTER TABLE audience_touched SET (fillfactor = 50);

-- The touched ids are re-stamped by every chunk that names them: without the index on touched_at
-- the re-stamp is HOT. The sweep reads the whole (small, regularly emptied) table instead.
DROP INDEX audience_touched_at;
