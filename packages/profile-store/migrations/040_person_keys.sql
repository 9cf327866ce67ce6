-- Crypto-shredding (docs/privacy.md): one data key per person (per id that keys messages),
-- wrapped under a master key from the environment. The rows are read and written only by
-- @pstream/platform's keyring.ts; the erasure turns a person's rows into tombstones in its
-- transaction, which makes every sealed copy of their data unreadable.
CREATE TABLE IF NOT EXISTS person_keys (
  -- HMAC-SHA256 of the id under KEYRING_SUBJECT_KEY (never the id itself)
  subject     bytea PRIMARY KEY,
  -- iv | AES-256-GCM(data key) | tag under master key master_id; NULL once shredded
  wrapped     bytea,
  master_id   text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  shredded_at timestamptz,
  CONSTRAINT person_keys_live_or_shredded CHECK ((wrapped IS NULL) = (shredded_at IS NOT NULL) AND (wrapped IS NULL) = (master_id IS NULL))
);
