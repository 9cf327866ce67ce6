-- Facts and lifecycle of each person (docs/model.md §4.2, §4.3). Unqualified names: the runner sets
-- search_path to the deployment's schema.

CREATE TABLE people (
  profile_key        text PRIMARY KEY,
  first_seen_at      timestamptz NOT NULL,
  last_active_at     timestamptz NOT NULL,
  purchases          integer     NOT NULL DEFAULT 0,
  monetary_total     numeric     NOT NULL DEFAULT 0,
  first_purchase_at  timestamptz,
  last_purchase_at   timestamptz,
  stage              text,                -- NULL until first evaluated
  stage_since        timestamptz,
  stage_evaluated_at timestamptz NOT NULL,
  updated_at         timestamptz NOT NULL DEFAULT now()
);

-- Counts per event type, one row per person and type.
CREATE TABLE event_counts (
  profile_key text   NOT NULL REFERENCES people (profile_key) ON DELETE CASCADE,
  type        text   NOT NULL,
  n           bigint NOT NULL,
  PRIMARY KEY (profile_key, type)
);

-- Every purchase, so windows such as "3 purchases in the last 90 days" are exact.
CREATE TABLE purchases (
  profile_key text        NOT NULL REFERENCES people (profile_key) ON DELETE CASCADE,
  source      text        NOT NULL,
  event_id    text        NOT NULL,
  occurred_at timestamptz NOT NULL,
  amount      numeric     NOT NULL,
  currency    text        NOT NULL,
  PRIMARY KEY (profile_key, source, event_id)
);
CREATE INDEX purchases_by_time ON purchases (profile_key, occurred_at);

-- Applied events, for dedupe: a redelivered or retried event finds its row and has no effect.
CREATE TABLE applied_events (
  source      text        NOT NULL,
  event_id    text        NOT NULL,
  received_at timestamptz NOT NULL,
  PRIMARY KEY (source, event_id)
);
CREATE INDEX applied_events_by_time ON applied_events (received_at);

CREATE TABLE lifecycle_transitions (
  id          bigserial   PRIMARY KEY,
  profile_key text        NOT NULL,
  from_stage  text,
  to_stage    text        NOT NULL,
  at          timestamptz NOT NULL,
  reason      text        NOT NULL
);
CREATE INDEX lifecycle_transitions_by_person ON lifecycle_transitions (profile_key, at);
