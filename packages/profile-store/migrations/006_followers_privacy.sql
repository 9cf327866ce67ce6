-- Follower insight (SPEC §5.5), consent and erasure (§4.5, §5.7). Unqualified names: the runner
-- sets search_path to the deployment's schema. Design: packages/profile-store/README.md.

-- Consent: a person can opt out of personalization (facts stay; interests are served nowhere).
ALTER TABLE people ADD COLUMN personalization boolean NOT NULL DEFAULT true;

-- ---------------------------------------------------------------------------------------------
-- Followers: aggregates kept current by triggers, in the same transaction as the change, so a
-- target's answer reads a few dozen rows whatever its number of followers.
-- follower_mix holds, per target, the number of current followers (follows.following) in each
-- facet value of their person: 'followers' (''), 'stage', 'value' (tier), 'gender', 'birth'
-- ('by:YYYY' from birthYear, 'age:N' from age, or 'unknown'), 'city'. Invariant: for every
-- target, n = Σ over its following rows of the facets of the follower's people row now.
CREATE TABLE follower_mix (
  target_type text   NOT NULL,
  target_id   text   NOT NULL,
  facet       text   NOT NULL,
  value       text   NOT NULL,
  n           bigint NOT NULL,
  PRIMARY KEY (target_type, target_id, facet, value)
);

-- Follow and unfollow events per target and UTC day of their event time (deduped: one per
-- follow_history row), for the 30-day chart.
CREATE TABLE follow_daily (
  target_type text    NOT NULL,
  target_id   text    NOT NULL,
  day         date    NOT NULL,
  follows     integer NOT NULL DEFAULT 0,
  unfollows   integer NOT NULL DEFAULT 0,
  PRIMARY KEY (target_type, target_id, day)
);

-- Followers of a target in a fixed pseudo-random order (hash of the profile key): the first k
-- rows are a uniform sample (top interests) and a bottom-k sketch (overlap), read by index.
CREATE INDEX follows_sample ON follows (target_type, target_id, hashtext(profile_key), profile_key) WHERE following;

-- The facets a person counts in. A missing person (no row) counts as unknown everywhere.
CREATE FUNCTION follower_facets(stage text, value_tier text, traits jsonb)
RETURNS TABLE (facet text, value text) LANGUAGE sql IMMUTABLE AS $$
  SELECT * FROM (VALUES
    ('followers', ''),
    ('stage', coalesce(stage, 'unknown')),
    ('value', coalesce(value_tier, 'unknown')),
    ('gender', coalesce(nullif(lower(btrim(traits->>'gender')), ''), 'unknown')),
    ('birth', CASE
       WHEN (traits->>'birthYear') ~ '^(19|20)[0-9]{2}$' THEN 'by:' || (traits->>'birthYear')
       WHEN (traits->>'age') ~ '^[0-9]{1,3}$' THEN 'age:' || (traits->>'age')
       ELSE 'unknown' END),
    ('city', nullif(btrim(traits->>'city'), ''))
  ) AS f(facet, value) WHERE value IS NOT NULL
$$;

-- Adds `sign` × the facets of person `pk` (as stored now) to target (tt, ti).
CREATE FUNCTION follower_mix_add(tt text, ti text, pk text, sign integer) RETURNS void LANGUAGE sql AS $$
  INSERT INTO follower_mix AS m (target_type, target_id, facet, value, n)
  SELECT tt, ti, x.facet, x.value, sign
  FROM (SELECT p.stage, p.value_tier, p.traits FROM (SELECT 1) one LEFT JOIN people p ON p.profile_key = pk) q,
       follower_facets(q.stage, q.value_tier, coalesce(q.traits, '{}')) x
  ON CONFLICT (target_type, target_id, facet, value) DO UPDATE SET n = m.n + excluded.n
$$;

CREATE FUNCTION follows_mix_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.following THEN
    PERFORM follower_mix_add(OLD.target_type, OLD.target_id, OLD.profile_key, -1);
  END IF;
  IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.following THEN
    PERFORM follower_mix_add(NEW.target_type, NEW.target_id, NEW.profile_key, 1);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER follows_mix_ins AFTER INSERT OR DELETE ON follows FOR EACH ROW EXECUTE FUNCTION follows_mix_trigger();
CREATE TRIGGER follows_mix_upd AFTER UPDATE ON follows FOR EACH ROW
  WHEN (OLD.following IS DISTINCT FROM NEW.following OR OLD.profile_key IS DISTINCT FROM NEW.profile_key)
  EXECUTE FUNCTION follows_mix_trigger();

-- A person's facets changed (stage, tier, traits; insert; delete): move their count in every
-- target they follow from the old facet values to the new ones.
CREATE FUNCTION people_mix_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  key text := CASE WHEN TG_OP = 'DELETE' THEN OLD.profile_key ELSE NEW.profile_key END;
BEGIN
  INSERT INTO follower_mix AS m (target_type, target_id, facet, value, n)
  SELECT f.target_type, f.target_id, x.facet, x.value, -1
  FROM follows f,
       follower_facets(CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.stage END,
                       CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.value_tier END,
                       CASE WHEN TG_OP = 'INSERT' THEN '{}'::jsonb ELSE OLD.traits END) x
  WHERE f.profile_key = key AND f.following
  ON CONFLICT (target_type, target_id, facet, value) DO UPDATE SET n = m.n + excluded.n;
  INSERT INTO follower_mix AS m (target_type, target_id, facet, value, n)
  SELECT f.target_type, f.target_id, x.facet, x.value, 1
  FROM follows f,
       follower_facets(CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE NEW.stage END,
                       CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE NEW.value_tier END,
                       CASE WHEN TG_OP = 'DELETE' THEN '{}'::jsonb ELSE NEW.traits END) x
  WHERE f.profile_key = key AND f.following
  ON CONFLICT (target_type, target_id, facet, value) DO UPDATE SET n = m.n + excluded.n;
  RETURN NULL;
END $$;
CREATE TRIGGER people_mix_ins AFTER INSERT OR DELETE ON people FOR EACH ROW EXECUTE FUNCTION people_mix_trigger();
CREATE TRIGGER people_mix_upd AFTER UPDATE ON people FOR EACH ROW
  WHEN (OLD.stage IS DISTINCT FROM NEW.stage OR OLD.value_tier IS DISTINCT FROM NEW.value_tier
        OR OLD.traits->'gender' IS DISTINCT FROM NEW.traits->'gender' OR OLD.traits->'birthYear' IS DISTINCT FROM NEW.traits->'birthYear'
        OR OLD.traits->'age' IS DISTINCT FROM NEW.traits->'age' OR OLD.traits->'city' IS DISTINCT FROM NEW.traits->'city')
  EXECUTE FUNCTION people_mix_trigger();

CREATE FUNCTION follow_daily_add(tt text, ti text, at timestamptz, action text, s integer) RETURNS void LANGUAGE sql AS $$
  INSERT INTO follow_daily AS d (target_type, target_id, day, follows, unfollows)
  VALUES (tt, ti, (at AT TIME ZONE 'UTC')::date,
          CASE WHEN action = 'follow' THEN s ELSE 0 END, CASE WHEN action = 'unfollow' THEN s ELSE 0 END)
  ON CONFLICT (target_type, target_id, day) DO UPDATE
    SET follows = d.follows + excluded.follows, unfollows = d.unfollows + excluded.unfollows
$$;
CREATE FUNCTION follow_daily_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    PERFORM follow_daily_add(OLD.target_type, OLD.target_id, OLD.at, OLD.action, -1);
  ELSE
    PERFORM follow_daily_add(NEW.target_type, NEW.target_id, NEW.at, NEW.action, 1);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER follow_history_daily AFTER INSERT OR DELETE ON follow_history FOR EACH ROW EXECUTE FUNCTION follow_daily_trigger();

-- What existed before this migration.
INSERT INTO follower_mix (target_type, target_id, facet, value, n)
SELECT f.target_type, f.target_id, x.facet, x.value, count(*)
FROM follows f LEFT JOIN people p ON p.profile_key = f.profile_key,
     follower_facets(p.stage, p.value_tier, coalesce(p.traits, '{}')) x
WHERE f.following GROUP BY 1, 2, 3, 4;
INSERT INTO follow_daily (target_type, target_id, day, follows, unfollows)
SELECT target_type, target_id, (at AT TIME ZONE 'UTC')::date,
       count(*) FILTER (WHERE action = 'follow'), count(*) FILTER (WHERE action = 'unfollow')
FROM follow_history GROUP BY 1, 2, 3;

-- ---------------------------------------------------------------------------------------------
-- Erasure (§5.7). An erasure removes a person and all their merged ids; the ids are suppressed
-- for good, so no later event, redelivery, rebuild or replay brings them back. Ids are kept only
-- as SHA-256 digests: the suppression list and the audit never hold an id in clear.
CREATE TABLE erasures (
  id               uuid        PRIMARY KEY,
  requested_by     text        NOT NULL,  -- a fingerprint of the bearer token, never the token
  requested_at     timestamptz NOT NULL,
  id_digests       text[]      NOT NULL,  -- which ids (SHA-256 hex), for the audit
  pending_ids      text[],                -- the ids in clear while the Redis step is due; NULL once done
  status           text        NOT NULL CHECK (status IN ('pending', 'done')),
  postgres_done_at timestamptz,
  redis_done_at    timestamptz,
  done_at          timestamptz
);
CREATE INDEX erasures_pending ON erasures (requested_at) WHERE status = 'pending';

CREATE TABLE suppressed_ids (
  digest     text        PRIMARY KEY,   -- SHA-256 hex of the id
  erasure_id uuid        NOT NULL REFERENCES erasures (id),
  created_at timestamptz NOT NULL DEFAULT now()
);
