-- The segmenter's full model (docs/model.md §4.2-§4.4), on top of 001. Unqualified names: the runner sets
-- search_path to the deployment's schema. The design is described in services/segmenter/README.md.

-- People: one row per canonical profile key (a userId, or an anonymousId not linked to one).
-- An identify for a person without events creates the row with traits only, hence the NULLs.
ALTER TABLE people ALTER COLUMN first_seen_at DROP NOT NULL;
ALTER TABLE people ALTER COLUMN last_active_at DROP NOT NULL;
ALTER TABLE people
  ADD COLUMN traits                 jsonb         NOT NULL DEFAULT '{}',
  ADD COLUMN unconverted_purchases  integer       NOT NULL DEFAULT 0,   -- purchases in a currency without a rate
  ADD COLUMN recent_social          timestamptz[] NOT NULL DEFAULT '{}',-- newest ≤16 likes/comments/shares/favorites
  ADD COLUMN value_tier             text          NOT NULL DEFAULT 'low',
  ADD COLUMN social_tier            text          NOT NULL DEFAULT 'silent',
  ADD COLUMN next_review_at         timestamptz;                        -- when stage or a tier next changes by time alone
-- The sweep reads only people who are due: its cost follows their number, not everyone's.
CREATE INDEX people_next_review ON people (next_review_at) WHERE next_review_at IS NOT NULL;
-- People written under 001 get their tiers and next review from the first sweep.
UPDATE people SET next_review_at = now();
CREATE INDEX people_stage ON people (stage);

-- Every id we have seen and the profile it belongs to. Merging B into A points all of B's ids
-- at A. Rows are locked (FOR UPDATE) by every transaction that resolves them, which orders an
-- anonymous batch and a merge of that anonymous id on another partition (see README).
CREATE TABLE identities (
  id          text        PRIMARY KEY,
  profile_key text        NOT NULL,
  kind        text        NOT NULL CHECK (kind IN ('user', 'anonymous')),
  seen_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX identities_by_profile ON identities (profile_key);

-- The amount in the base currency; NULL when the currency had no configured rate (then the
-- purchase counts, but not towards monetary totals; people.unconverted_purchases counts them).
ALTER TABLE purchases ADD COLUMN base_amount numeric;

-- Current follows: the latest follow/unfollow per target by event time wins.
CREATE TABLE follows (
  profile_key text        NOT NULL,
  target_type text        NOT NULL,
  target_id   text        NOT NULL,
  following   boolean     NOT NULL,
  since       timestamptz,           -- start of the current follow; NULL when not following
  changed_at  timestamptz NOT NULL,  -- event time of the latest follow/unfollow
  PRIMARY KEY (profile_key, target_type, target_id)
);
CREATE INDEX follows_by_target ON follows (target_type, target_id) WHERE following;
CREATE INDEX follows_recent ON follows (profile_key, since DESC) WHERE following;

-- Every follow and unfollow, for history and per-day follower charts (§5.5).
CREATE TABLE follow_history (
  source      text        NOT NULL,
  event_id    text        NOT NULL,
  profile_key text        NOT NULL,
  target_type text        NOT NULL,
  target_id   text        NOT NULL,
  action      text        NOT NULL CHECK (action IN ('follow', 'unfollow')),
  at          timestamptz NOT NULL,
  PRIMARY KEY (source, event_id)
);
CREATE INDEX follow_history_by_person ON follow_history (profile_key, at);
CREATE INDEX follow_history_by_target ON follow_history (target_type, target_id, at);

-- Daily activity (UTC days): "did X (on a target / with a tag) at least N times in the last D days".
CREATE TABLE activity_daily (
  profile_key text    NOT NULL,
  day         date    NOT NULL,
  type        text    NOT NULL,
  target_type text    NOT NULL,
  target_id   text    NOT NULL,
  n           integer NOT NULL,
  PRIMARY KEY (profile_key, type, target_type, target_id, day)
);
CREATE TABLE tag_activity_daily (
  profile_key text    NOT NULL,
  day         date    NOT NULL,
  type        text    NOT NULL,
  tag         text    NOT NULL,
  n           integer NOT NULL,
  PRIMARY KEY (profile_key, type, tag, day)
);

-- Transitions are published from this outbox, written in the same transaction as the change
-- and drained to profile.lifecycle.v1 (at least once, in id order; README "lifecycle topic").
CREATE TABLE lifecycle_outbox (
  id          bigserial   PRIMARY KEY,
  profile_key text        NOT NULL,
  payload     jsonb       NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- The consumer's position per group and partition, committed with the effects of the messages
-- before it: the source of truth for exactly-once (Kafka's committed offset only saves refetching).
CREATE TABLE consumer_offsets (
  group_id    text        NOT NULL,
  topic       text        NOT NULL,
  partition   integer     NOT NULL,
  next_offset bigint      NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (group_id, topic, partition)
);
