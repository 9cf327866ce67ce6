-- Saved audiences kept current at a cost that follows the people due (docs/api.md §5.4 "How saved
-- audiences stay current"). Unqualified names: the runner sets search_path to the deployment's schema.

-- Per audience and person, the next instant the membership can change by time alone (an interest
-- decaying below a threshold, a `did` window sliding past the counted days). Only people with such
-- an instant have a row, so the index on due_at holds exactly the people the sweep may have to
-- re-check, like people.next_review_at's partial index for the lifecycle sweep.
CREATE TABLE audience_watch (
  audience_id text        NOT NULL REFERENCES audiences (id) ON DELETE CASCADE,
  profile_key text        NOT NULL,
  due_at      timestamptz NOT NULL,
  PRIMARY KEY (audience_id, profile_key)
);
CREATE INDEX audience_watch_due ON audience_watch (due_at);

-- Ids named by applied messages (events, identify, alias): the sweep re-checks those people against
-- every saved audience for a grace period, then forgets them.
CREATE TABLE audience_touched (
  id         text        PRIMARY KEY,
  touched_at timestamptz NOT NULL
);
CREATE INDEX audience_touched_at ON audience_touched (touched_at);

-- Audiences saved before this migration have no watch rows: a full evaluation writes them.
UPDATE audiences SET refreshed_at = NULL;
