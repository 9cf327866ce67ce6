-- When a training run last trained nothing for a trait (e.g. fewer than two classes given); null after a
-- success. The trainer waits MODEL_RETRY_INTERVAL_MS after it before trying that trait again on its own
-- (a POST /v1/models/{trait}/train still asks at once): without it a trait that cannot be trained yet was
-- due at every poll, and each poll read the whole population.
ALTER TABLE trait_models ADD COLUMN failed_at timestamptz;
