-- Follower insight (docs/api.md §5.5), consent and erasure (§4.5, §5.7). Unqualified names: the runner
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

-- The triggers are per statement, over transition tables (visible only in the trigger function
-- itself, hence one function per case): a chunk's follows, or a sweep's stage changes, become ONE
-- grouped upsert of follower_mix, so a popular target's rows are written once per statement, not
-- once per follower.

-- A statement's follows rows, signed (+1 new, −1 old), counted with their person's facets now.
CREATE FUNCTION follows_mix_ins() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO follower_mix AS m (target_type, target_id, facet, value, n)
  SELECT d.target_type, d.target_id, x.facet, x.value, sum(d.sign)
  FROM (SELECT target_type, target_id, profile_key, 1 AS sign FROM new_rows WHERE following) d
  LEFT JOIN people p ON p.profile_key = d.profile_key
  CROSS JOIN LATERAL follower_facets(p.stage, p.value_tier, coalesce(p.traits, '{}')) x
  GROUP BY 1, 2, 3, 4 HAVING sum(d.sign) <> 0
  ON CONFLICT (target_type, target_id, facet, value) DO UPDATE SET n = m.n + excluded.n;
  RETURN NULL;
END $$;
CREATE FUNCTION follows_mix_del() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO follower_mix AS m (target_type, target_id, facet, value, n)
  SELECT d.target_type, d.target_id, x.facet, x.value, sum(d.sign)
  FROM (SELECT target_type, target_id, profile_key, -1 AS sign FROM old_rows WHERE following) d
  LEFT JOIN people p ON p.profile_key = d.profile_key
  CROSS JOIN LATERAL follower_facets(p.stage, p.value_tier, coalesce(p.traits, '{}')) x
  GROUP BY 1, 2, 3, 4 HAVING sum(d.sign) <> 0
  ON CONFLICT (target_type, target_id, facet, value) DO UPDATE SET n = m.n + excluded.n;
  RETURN NULL;
END $$;
CREATE FUNCTION follows_mix_upd() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO follower_mix AS m (target_type, target_id, facet, value, n)
  SELECT d.target_type, d.target_id, x.facet, x.value, sum(d.sign)
  FROM (SELECT target_type, target_id, profile_key, -1 AS sign FROM old_rows WHERE following
        UNION ALL SELECT target_type, target_id, profile_key, 1 FROM new_rows WHERE following) d
  LEFT JOIN people p ON p.profile_key = d.profile_key
  CROSS JOIN LATERAL follower_facets(p.stage, p.value_tier, coalesce(p.traits, '{}')) x
  GROUP BY 1, 2, 3, 4 HAVING sum(d.sign) <> 0
  ON CONFLICT (target_type, target_id, facet, value) DO UPDATE SET n = m.n + excluded.n;
  RETURN NULL;
END $$;
CREATE TRIGGER follows_mix_ins AFTER INSERT ON follows REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION follows_mix_ins();
CREATE TRIGGER follows_mix_del AFTER DELETE ON follows REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION follows_mix_del();
CREATE TRIGGER follows_mix_upd AFTER UPDATE ON follows REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION follows_mix_upd();

-- People whose facets a statement changed (stage, tier, the traits read; inserted; deleted):
-- their count moves, in every target they follow, from the old facet values to the new ones.
-- Rows whose facets did not change (most updates: last activity, purchases) drop out first.
CREATE FUNCTION people_mix_ins() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO follower_mix AS m (target_type, target_id, facet, value, n)
  SELECT f.target_type, f.target_id, x.facet, x.value, sum(d.sign)
  FROM (SELECT profile_key, stage, value_tier, traits, 1 AS sign FROM new_rows
        UNION ALL SELECT profile_key, NULL, NULL, '{}'::jsonb, -1 FROM new_rows) d
  JOIN follows f ON f.profile_key = d.profile_key AND f.following
  CROSS JOIN LATERAL follower_facets(d.stage, d.value_tier, d.traits) x
  GROUP BY 1, 2, 3, 4 HAVING sum(d.sign) <> 0
  ON CONFLICT (target_type, target_id, facet, value) DO UPDATE SET n = m.n + excluded.n;
  RETURN NULL;
END $$;
CREATE FUNCTION people_mix_del() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO follower_mix AS m (target_type, target_id, facet, value, n)
  SELECT f.target_type, f.target_id, x.facet, x.value, sum(d.sign)
  FROM (SELECT profile_key, stage, value_tier, traits, -1 AS sign FROM old_rows
        UNION ALL SELECT profile_key, NULL, NULL, '{}'::jsonb, 1 FROM old_rows) d
  JOIN follows f ON f.profile_key = d.profile_key AND f.following
  CROSS JOIN LATERAL follower_facets(d.stage, d.value_tier, d.traits) x
  GROUP BY 1, 2, 3, 4 HAVING sum(d.sign) <> 0
  ON CONFLICT (target_type, target_id, facet, value) DO UPDATE SET n = m.n + excluded.n;
  RETURN NULL;
END $$;
CREATE FUNCTION people_mix_upd() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO follower_mix AS m (target_type, target_id, facet, value, n)
  SELECT f.target_type, f.target_id, x.facet, x.value, sum(d.sign)
  FROM (WITH ch AS (
          SELECT o.profile_key, o.stage AS os, o.value_tier AS ot, o.traits AS otr, n.stage AS ns, n.value_tier AS nt, n.traits AS ntr
          FROM old_rows o JOIN new_rows n USING (profile_key)
          WHERE (o.stage, o.value_tier, o.traits->'gender', o.traits->'birthYear', o.traits->'age', o.traits->'city')
                IS DISTINCT FROM (n.stage, n.value_tier, n.traits->'gender', n.traits->'birthYear', n.traits->'age', n.traits->'city'))
        SELECT profile_key, os AS stage, ot AS value_tier, otr AS traits, -1 AS sign FROM ch
        UNION ALL SELECT profile_key, ns, nt, ntr, 1 FROM ch) d
  JOIN follows f ON f.profile_key = d.profile_key AND f.following
  CROSS JOIN LATERAL follower_facets(d.stage, d.value_tier, d.traits) x
  GROUP BY 1, 2, 3, 4 HAVING sum(d.sign) <> 0
  ON CONFLICT (target_type, target_id, facet, value) DO UPDATE SET n = m.n + excluded.n;
  RETURN NULL;
END $$;
CREATE TRIGGER people_mix_ins AFTER INSERT ON people REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION people_mix_ins();
CREATE TRIGGER people_mix_del AFTER DELETE ON people REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION people_mix_del();
CREATE TRIGGER people_mix_upd AFTER UPDATE ON people REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION people_mix_upd();

-- Follow and unfollow events per target and UTC day, per statement.
CREATE FUNCTION follow_daily_ins() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO follow_daily AS d (target_type, target_id, day, follows, unfollows)
  SELECT target_type, target_id, (at AT TIME ZONE 'UTC')::date,
         sum(CASE WHEN action = 'follow' THEN sign ELSE 0 END), sum(CASE WHEN action = 'unfollow' THEN sign ELSE 0 END)
  FROM (SELECT target_type, target_id, at, action, 1 AS sign FROM new_rows) h GROUP BY 1, 2, 3
  ON CONFLICT (target_type, target_id, day) DO UPDATE
    SET follows = d.follows + excluded.follows, unfollows = d.unfollows + excluded.unfollows;
  RETURN NULL;
END $$;
CREATE FUNCTION follow_daily_del() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO follow_daily AS d (target_type, target_id, day, follows, unfollows)
  SELECT target_type, target_id, (at AT TIME ZONE 'UTC')::date,
         sum(CASE WHEN action = 'follow' THEN sign ELSE 0 END), sum(CASE WHEN action = 'unfollow' THEN sign ELSE 0 END)
  FROM (SELECT target_type, target_id, at, action, -1 AS sign FROM old_rows) h GROUP BY 1, 2, 3
  ON CONFLICT (target_type, target_id, day) DO UPDATE
    SET follows = d.follows + excluded.follows, unfollows = d.unfollows + excluded.unfollows;
  RETURN NULL;
END $$;
CREATE TRIGGER follow_history_daily_ins AFTER INSERT ON follow_history REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION follow_daily_ins();
CREATE TRIGGER follow_history_daily_del AFTER DELETE ON follow_history REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION follow_daily_del();

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
