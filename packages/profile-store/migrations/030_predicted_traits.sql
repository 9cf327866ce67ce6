-- Predicted traits (docs/model.md §5.9): one row per trained trait, and the stored prediction of
-- each person who did not give the trait. Predictions are written by a training run in one
-- transaction with their model; a read serves them as stored (no model call per read).

CREATE TABLE trait_models (
  trait             text PRIMARY KEY,
  trained_at        timestamptz,
  trained_on        integer NOT NULL DEFAULT 0,
  holdout_size      integer NOT NULL DEFAULT 0,
  holdout_accuracy  double precision,
  holdout_baseline  double precision,
  -- the softmax model (classes, features, weights, bias, scale) of @pstream/traits-model
  model             jsonb,
  -- a POST /v1/models/{trait}/train not yet done: the next training run clears it
  requested_at      timestamptz,
  -- why the last run trained nothing (e.g. fewer than two classes given), null after a success
  last_error        text
);
INSERT INTO trait_models (trait) VALUES ('gender'), ('ageBand');

-- The foreign key makes erasure and merges clean: deleting a people row deletes its predictions,
-- and a prediction is never written for a person whose row is gone.
CREATE TABLE predicted_traits (
  profile_key  text NOT NULL REFERENCES people (profile_key) ON DELETE CASCADE,
  trait        text NOT NULL,
  value        text NOT NULL,
  confidence   real NOT NULL,
  PRIMARY KEY (profile_key, trait)
);
-- audience leaves on predicted.<trait> read by (trait, value) above a confidence
CREATE INDEX predicted_traits_by_value ON predicted_traits (trait, value, confidence);
