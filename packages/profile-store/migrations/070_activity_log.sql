-- Daily activity as one append-only table (issue 21; packages/profile-store/README.md "Daily activity").
-- Unqualified names: the runner sets search_path to the deployment's schema.
--
-- Before: every event upserted one activity_daily row (person × type × target × day) and one
-- tag_activity_daily row per tag (person × type × tag × day) — about 33 rows per person of the
-- demo's traffic, each with a 28-byte tuple header and a 50-byte primary-key entry, 4.7 KB of the
-- 6.2 KB a person cost, and 1 500 index-probing upserts per 500-event chunk. Now a chunk INSERTs
-- one row per person × day × type × target × tag list it holds, with the event's tags in the row
-- (the tag counts of a row are its `n` times how often the tag appears in `tags`): a third of the
-- rows, no primary key to probe, no update of an older row. The tags are one text, joined by U+001F
-- (a tag holds no control character, @pstream/events TAG_PATTERN): 29 bytes for two tags where a
-- text[] took 64; `string_to_array(tags, E'\x1f')` is the list. The GIN index is on the row's
-- tags each prefixed by its type (`click` U+001F `category:tea`), so a tag leaf finds the rows of
-- its type and tag at once, as the old (type, tag, day) index did, not every row with the tag.
-- Several chunks may write the same key; every reader sums `n`, and the views below give the old
-- tables' rows exactly.

CREATE TABLE activity (
  profile_key text    NOT NULL,
  day         date    NOT NULL,
  type        text    NOT NULL,
  target_type text,              -- NULL: a tag count carried over from tag_activity_daily (below)
  target_id   text,
  tags        text    NOT NULL,  -- the events' tags, in event order, repeats kept, joined by U+001F
  n           integer NOT NULL
) WITH (fillfactor = 100);       -- rows are inserted and deleted, never updated

-- A person's rows (restricted leaves, explain, similarity, merges, erasure, retention by person-day).
CREATE INDEX activity_by_person ON activity (profile_key, day);
-- Leaf indexes (docs/api.md §5.4): `did` without a target, with a target, with a tag.
CREATE INDEX activity_by_type_day ON activity (type, day);
CREATE INDEX activity_by_target ON activity (type, target_type, target_id, day) WHERE target_type IS NOT NULL;
CREATE INDEX activity_by_tag ON activity
  USING gin (string_to_array(type || E'\x1f' || replace(tags, E'\x1f', E'\x1e' || type || E'\x1f'), E'\x1e'));
-- Retention finds old days through it (rows arrive roughly in day order).
CREATE INDEX activity_day_brin ON activity USING brin (day);

-- Existing rows: activity rows keep their counts (no tags); tag rows become rows without a target,
-- which count towards tag leaves only.
INSERT INTO activity (profile_key, day, type, target_type, target_id, tags, n)
SELECT profile_key, day, type, target_type, target_id, '', n FROM activity_daily;
INSERT INTO activity (profile_key, day, type, target_type, target_id, tags, n)
SELECT profile_key, day, type, NULL, NULL, tag, n FROM tag_activity_daily;
DROP TABLE activity_daily;
DROP TABLE tag_activity_daily;

-- The old tables' rows, exactly (one row per key, `n` summed over the rows that hold it), for
-- reading and comparing; the leaves read `activity` itself, through its indexes.
CREATE VIEW activity_daily AS
  SELECT profile_key, day, type, target_type, target_id, sum(n)::int AS n
  FROM activity WHERE target_type IS NOT NULL
  GROUP BY profile_key, day, type, target_type, target_id;
CREATE VIEW tag_activity_daily AS
  SELECT a.profile_key, a.day, a.type, t.tag, sum(a.n)::int AS n
  FROM activity a CROSS JOIN LATERAL unnest(string_to_array(a.tags, E'\x1f')) AS t(tag)
  GROUP BY a.profile_key, a.day, a.type, t.tag;

ANALYZE activity;
