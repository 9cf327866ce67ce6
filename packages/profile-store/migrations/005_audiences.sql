-- Audiences (docs/api.md §5.4): saved rules, their current members, and the changes waiting for
-- profile.audiences.v1. Plus the indexes the rule planner answers leaves from, so no leaf scans
-- everyone. Unqualified names: the runner sets search_path to the deployment's schema.

CREATE TABLE audiences (
  id         text        PRIMARY KEY,
  name       text        NOT NULL,
  rule       jsonb       NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  refreshed_at timestamptz
);

-- The members as of the last refresh: members pages are keyset-paged over this table, so every
-- member appears once; entries and exits are the difference between two refreshes.
CREATE TABLE audience_members (
  audience_id text        NOT NULL REFERENCES audiences (id) ON DELETE CASCADE,
  profile_key text        NOT NULL,
  entered_at  timestamptz NOT NULL,
  PRIMARY KEY (audience_id, profile_key)
);

-- Entries and exits not yet on Kafka; `id` is the change id consumers dedupe by.
CREATE TABLE audience_outbox (
  id          bigserial   PRIMARY KEY,
  profile_key text        NOT NULL,
  payload     jsonb       NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- Leaf indexes. `did` without a target or tag, with a target, with a tag:
CREATE INDEX activity_daily_by_type_day ON activity_daily (type, day) INCLUDE (profile_key, n);
CREATE INDEX activity_daily_by_target ON activity_daily (type, target_type, target_id, day) INCLUDE (profile_key, n);
CREATE INDEX tag_activity_daily_by_tag ON tag_activity_daily (type, tag, day) INCLUDE (profile_key, n);
-- tiers, and traits (jsonb_ops answers @> for eq/in and ? for exists):
CREATE INDEX people_value_tier ON people (value_tier);
CREATE INDEX people_social_tier ON people (social_tier);
CREATE INDEX people_traits ON people USING gin (traits);
