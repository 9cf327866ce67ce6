-- /similar's facts from index pages only (issue 21 item 3; docs/api.md §5.3; BENCHMARKS.md "Similar
-- people: the facts from covering indexes…").
-- Unqualified names: the runner sets search_path to the deployment's schema.
--
-- For each of its ~400 candidates /similar sums the purchases of the last 365 days and the social
-- interactions of the last 30 (`similarityInputs`). Each sum walked an index to the person and then
-- fetched every matching row from the heap: ~7.6 buffers per person at 1 M people, 3.2 of them read
-- from outside shared_buffers, every candidate on pages of its own. With the summed column in the
-- index and the rows' filter as the index's predicate, both sums are index-only scans (no heap page
-- while the visibility map says the page is all-visible, which autovacuum keeps): 6.2 buffers, 1.9
-- read, and the pages they come from are a quarter of the size (purchases 13 MB, social rows 48 MB,
-- against 322 + 24 MB of heap and 155 MB of activity_by_person at 1 M people).

-- Same key as purchases_by_time (every plan that used it can use this one), one index entry per
-- purchase as before, 8 bytes wider: the spend of a window is read from the index alone.
CREATE INDEX purchases_spend ON purchases (profile_key, occurred_at) INCLUDE (base_amount);
DROP INDEX purchases_by_time;

-- Only the rows /similar's `$social` counts (the only reader: the social tier keeps its own
-- `people.recent_social`): a social type (@pstream/events
-- SOCIAL_ACTIONS; the test "the social index covers the social types" fails if the list changes
-- without this predicate) on a target. The write path adds one index entry per such row — none for
-- the visits, purchases and tag rows that make up most of them.
CREATE INDEX activity_social ON activity (profile_key, day) INCLUDE (n)
  WHERE target_type IS NOT NULL AND type IN ('like', 'comment', 'share', 'favorite');

ANALYZE purchases, activity;
