-- The follower-mix triggers (migrations 006, 011) plan each statement afresh (issue 21; packages/
-- profile-store/README.md, "apply path"): the same statements, the same rows in and counts out.
-- Unqualified names: the runner sets search_path to the deployment's schema.
--
-- PL/pgSQL keeps the plan of a static statement for the life of the connection, made at its first
-- call with that call's transition-table sizes (none, when a chunk only inserts people) and the
-- table sizes of that moment. The segmenter's connections live long and start on small tables, so
-- the plans kept were for a row or two (auto_explain, log_triggers, bench:segmenter): people_mix_upd
-- joined the statement's old and new rows (282 each) by a nested loop, 79 503 pairs compared, and
-- follows_mix_ins read `people` by a sequential scan for 16 follows — both growing with the chunk
-- and the table. EXECUTE plans the statement at each call with the actual sizes (a hash join, index
-- lookups); planning costs a fraction of a millisecond. Same run, alternating with main, statement
-- wall time without instrumentation: the people upsert 21 → 14 µs an event.

CREATE OR REPLACE FUNCTION follows_mix_ins() RETURNS trigger LANGUAGE plpgsql SET jit = off AS $$
BEGIN
  EXECUTE $q$
  INSERT INTO follower_mix AS m (target_type, target_id, facet, value, n)
  SELECT d.target_type, d.target_id, x.facet, x.value, sum(d.sign)
  FROM (SELECT target_type, target_id, profile_key, 1 AS sign FROM new_rows WHERE following) d
  LEFT JOIN people p ON p.profile_key = d.profile_key
  CROSS JOIN LATERAL follower_facets(p.stage, p.value_tier, coalesce(p.traits, '{}')) x
  GROUP BY 1, 2, 3, 4 HAVING sum(d.sign) <> 0
  ON CONFLICT (target_type, target_id, facet, value) DO UPDATE SET n = m.n + excluded.n
  $q$;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION follows_mix_del() RETURNS trigger LANGUAGE plpgsql SET jit = off AS $$
BEGIN
  EXECUTE $q$
  INSERT INTO follower_mix AS m (target_type, target_id, facet, value, n)
  SELECT d.target_type, d.target_id, x.facet, x.value, sum(d.sign)
  FROM (SELECT target_type, target_id, profile_key, -1 AS sign FROM old_rows WHERE following) d
  LEFT JOIN people p ON p.profile_key = d.profile_key
  CROSS JOIN LATERAL follower_facets(p.stage, p.value_tier, coalesce(p.traits, '{}')) x
  GROUP BY 1, 2, 3, 4 HAVING sum(d.sign) <> 0
  ON CONFLICT (target_type, target_id, facet, value) DO UPDATE SET n = m.n + excluded.n
  $q$;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION follows_mix_upd() RETURNS trigger LANGUAGE plpgsql SET jit = off AS $$
BEGIN
  EXECUTE $q$
  INSERT INTO follower_mix AS m (target_type, target_id, facet, value, n)
  SELECT d.target_type, d.target_id, x.facet, x.value, sum(d.sign)
  FROM (SELECT target_type, target_id, profile_key, -1 AS sign FROM old_rows WHERE following
        UNION ALL SELECT target_type, target_id, profile_key, 1 FROM new_rows WHERE following) d
  LEFT JOIN people p ON p.profile_key = d.profile_key
  CROSS JOIN LATERAL follower_facets(p.stage, p.value_tier, coalesce(p.traits, '{}')) x
  GROUP BY 1, 2, 3, 4 HAVING sum(d.sign) <> 0
  ON CONFLICT (target_type, target_id, facet, value) DO UPDATE SET n = m.n + excluded.n
  $q$;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION people_mix_ins() RETURNS trigger LANGUAGE plpgsql SET jit = off AS $$
BEGIN
  EXECUTE $q$
  INSERT INTO follower_mix AS m (target_type, target_id, facet, value, n)
  SELECT f.target_type, f.target_id, x.facet, x.value, sum(d.sign)
  FROM (SELECT profile_key, stage, value_tier, traits, 1 AS sign FROM new_rows
        UNION ALL SELECT profile_key, NULL, NULL, '{}'::jsonb, -1 FROM new_rows) d
  CROSS JOIN LATERAL (SELECT target_type, target_id FROM follows WHERE profile_key = d.profile_key AND following OFFSET 0) f
  CROSS JOIN LATERAL follower_facets(d.stage, d.value_tier, d.traits) x
  GROUP BY 1, 2, 3, 4 HAVING sum(d.sign) <> 0
  ON CONFLICT (target_type, target_id, facet, value) DO UPDATE SET n = m.n + excluded.n
  $q$;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION people_mix_del() RETURNS trigger LANGUAGE plpgsql SET jit = off AS $$
BEGIN
  EXECUTE $q$
  INSERT INTO follower_mix AS m (target_type, target_id, facet, value, n)
  SELECT f.target_type, f.target_id, x.facet, x.value, sum(d.sign)
  FROM (SELECT profile_key, stage, value_tier, traits, -1 AS sign FROM old_rows
        UNION ALL SELECT profile_key, NULL, NULL, '{}'::jsonb, 1 FROM old_rows) d
  CROSS JOIN LATERAL (SELECT target_type, target_id FROM follows WHERE profile_key = d.profile_key AND following OFFSET 0) f
  CROSS JOIN LATERAL follower_facets(d.stage, d.value_tier, d.traits) x
  GROUP BY 1, 2, 3, 4 HAVING sum(d.sign) <> 0
  ON CONFLICT (target_type, target_id, facet, value) DO UPDATE SET n = m.n + excluded.n
  $q$;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION people_mix_upd() RETURNS trigger LANGUAGE plpgsql SET jit = off AS $$
BEGIN
  EXECUTE $q$
  INSERT INTO follower_mix AS m (target_type, target_id, facet, value, n)
  SELECT f.target_type, f.target_id, x.facet, x.value, sum(d.sign)
  FROM (WITH ch AS (
          SELECT o.profile_key, o.stage AS os, o.value_tier AS ot, o.traits AS otr, n.stage AS ns, n.value_tier AS nt, n.traits AS ntr
          FROM old_rows o JOIN new_rows n USING (profile_key)
          WHERE (o.stage, o.value_tier, o.traits->'gender', o.traits->'birthYear', o.traits->'age', o.traits->'city')
                IS DISTINCT FROM (n.stage, n.value_tier, n.traits->'gender', n.traits->'birthYear', n.traits->'age', n.traits->'city'))
        SELECT profile_key, os AS stage, ot AS value_tier, otr AS traits, -1 AS sign FROM ch
        UNION ALL SELECT profile_key, ns, nt, ntr, 1 FROM ch) d
  CROSS JOIN LATERAL (SELECT target_type, target_id FROM follows WHERE profile_key = d.profile_key AND following OFFSET 0) f
  CROSS JOIN LATERAL follower_facets(d.stage, d.value_tier, d.traits) x
  GROUP BY 1, 2, 3, 4 HAVING sum(d.sign) <> 0
  ON CONFLICT (target_type, target_id, facet, value) DO UPDATE SET n = m.n + excluded.n
  $q$;
  RETURN NULL;
END $$;
