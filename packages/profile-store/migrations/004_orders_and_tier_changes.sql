-- Orders (docs/events.md §3.1, §4.2) and recorded tier changes (§4.3), on top of 001/002. Unqualified names:
-- the runner sets search_path to the deployment's schema.

-- The order a purchase line belongs to (the event's orderId; Segment's order_id). Lines of one
-- order of one source are one purchase for people.purchases, stages and value tiers; a purchase
-- without an order is its own. NULL for purchases stored before this migration.
ALTER TABLE purchases ADD COLUMN order_id text;
CREATE INDEX purchases_by_order ON purchases (profile_key, source, order_id) WHERE order_id IS NOT NULL;

-- Tier changes are recorded and published beside stage changes: `kind` says which one changed.
-- Existing rows are stage changes.
ALTER TABLE lifecycle_transitions ADD COLUMN kind text NOT NULL DEFAULT 'stage'
  CHECK (kind IN ('stage', 'value_tier', 'social_tier'));
