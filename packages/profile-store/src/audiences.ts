import { DAY_MS } from '@pstream/events';
import type { Pool, PoolClient } from '@pstream/platform';
import { GIVEN_BY, type PredictedTrait } from '@pstream/traits-model';
import { SOCIAL_TYPES_SQL } from './fold';
import { idDigest, personalizationAllowed } from './privacy';

/*
 * Everything Postgres answers for audiences (docs/api.md §5.4) and similar people (§5.3): the fact
 * leaves of a rule, each from an index (migrations 002 and 005), saved audiences, their members
 * and the entries/exits outbox, and the spend/social facts of the similarity vector.
 */

/** Members written at once from which the table's statistics are refreshed at once. */
const ANALYZE_AFTER = 10_000;

/** The fact leaves of §5.4 (the rule schema lives in @pstream/audiences; these are its shapes). */
export type FactLeaf =
  | { stage: { in: string[] } }
  | { tier: { value?: string[]; social?: string[] } }
  | { trait: { name: string; op: 'eq' | 'ne' | 'in' | 'gt' | 'gte' | 'lt' | 'lte' | 'exists'; value?: Scalar | Scalar[]; minConfidence?: number } }
  | { follows: { type: string; id: string } }
  | { did: { type: string; target?: { type: string; id: string }; tag?: string; atLeast: number; inLastDays: number } };
type Scalar = string | number | boolean;

export type AudienceRow = { id: string; name: string; rule: unknown; count: number; createdAt: string };

const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/**
 * The SQL of a leaf: a query of profile keys (`profile_key`); `$1` is the restriction (people to
 * check) or NULL. Unrestricted, it reads the leaf's own index. Restricted, it is driven by the keys:
 * one lookup per person on the table's primary key (a LATERAL subquery the planner cannot turn
 * into a join) — however many people the leaf holds for overall. A plain `unnest($1) JOIN table`
 * let Postgres, which knows the array's length, hash-join against a scan of the whole leaf
 * instead (200 000 rows of a city to check 20 000 people: 2–3× slower at 1 M people).
 */
function leafQuery(leaf: FactLeaf, nowMs: number, restricted: boolean): { sql: string; params: unknown[] } {
  const { table, cond, params, atLeast } = leafCondition(leaf, nowMs);
  if (atLeast === undefined) {
    return restricted
      ? { sql: `SELECT x.profile_key FROM unnest($1::text[]) AS w(key) CROSS JOIN LATERAL (SELECT profile_key FROM ${table} WHERE profile_key = w.key AND ${cond} LIMIT 1) x`, params }
      : { sql: `SELECT profile_key FROM ${table} WHERE $1::text[] IS NULL AND ${cond}`, params };
  }
  const n = `$${params.length + 2}`;
  return restricted
    ? { sql: `SELECT w.key AS profile_key FROM unnest($1::text[]) AS w(key) CROSS JOIN LATERAL (SELECT sum(n) AS n FROM ${table} WHERE profile_key = w.key AND ${cond}) x WHERE x.n >= ${n}`, params: [...params, atLeast] }
    : { sql: `SELECT profile_key FROM ${table} WHERE $1::text[] IS NULL AND ${cond} GROUP BY profile_key HAVING sum(n) >= ${n}`, params: [...params, atLeast] };
}

/** A leaf as a condition on one table's rows (`$2`… are `params`); `atLeast`: the rows' summed `n` must reach it. */
function leafCondition(leaf: FactLeaf, nowMs: number): { table: string; cond: string; params: unknown[]; atLeast?: number } {
  if ('stage' in leaf) return { table: 'people', cond: 'stage = ANY($2::text[])', params: [leaf.stage.in] };
  if ('tier' in leaf) {
    const col = leaf.tier.value ? 'value_tier' : 'social_tier';
    return { table: 'people', cond: `${col} = ANY($2::text[])`, params: [leaf.tier.value ?? leaf.tier.social] };
  }
  if ('follows' in leaf) return { table: 'follows', cond: 'target_type = $2 AND target_id = $3 AND following', params: [leaf.follows.type, leaf.follows.id] };
  if ('did' in leaf) {
    const d = leaf.did;
    const window = [d.type, utcDay(nowMs - (d.inLastDays - 1) * DAY_MS), utcDay(nowMs)];
    const base = 'type = $2 AND day BETWEEN $3 AND $4';
    if (d.tag !== undefined) return { table: 'tag_activity_daily', cond: `${base} AND tag = $5`, params: [...window, d.tag], atLeast: d.atLeast };
    if (d.target !== undefined) {
      return { table: 'activity_daily', cond: `${base} AND target_type = $5 AND target_id = $6`, params: [...window, d.target.type, d.target.id], atLeast: d.atLeast };
    }
    return { table: 'activity_daily', cond: base, params: window, atLeast: d.atLeast };
  }
  const t = leaf.trait;
  if (t.name.startsWith('predicted.')) return predictedCondition(t);
  const has = (v: Scalar) => JSON.stringify({ [t.name]: v });
  switch (t.op) {
    case 'exists':
      return { table: 'people', cond: 'traits ? $2', params: [t.name] };
    case 'eq':
      return { table: 'people', cond: 'traits @> $2::jsonb', params: [has(t.value as Scalar)] };
    case 'ne':
      return { table: 'people', cond: 'NOT traits @> $2::jsonb', params: [has(t.value as Scalar)] };
    case 'in': {
      const values = t.value as Scalar[];
      // an OR of containments: each one answered by the GIN index, combined by a bitmap OR
      const ors = values.map((_, i) => `traits @> $${i + 2}::jsonb`).join(' OR ');
      return { table: 'people', cond: `(${ors})`, params: values.map(has) };
    }
    default: {
      const op = { gt: '>', gte: '>=', lt: '<', lte: '<=' }[t.op];
      return { table: 'people', cond: `jsonb_typeof(traits -> $2) = 'number' AND (traits ->> $2)::numeric ${op} $3`, params: [t.name, t.value] };
    }
  }
}

/**
 * A trait leaf on a prediction (§5.9): the stored predictions of `predicted_traits` at or above
 * `minConfidence`, for people who have not given the trait since (a given trait always wins).
 * `ne` holds only for people predicted another value; the rule schema allows eq, ne, in, exists.
 */
function predictedCondition(t: Extract<FactLeaf, { trait: unknown }>['trait']): { table: string; cond: string; params: unknown[] } {
  const trait = t.name.slice('predicted.'.length) as PredictedTrait;
  const values = t.op === 'exists' ? null : ([] as Scalar[]).concat(t.value as Scalar | Scalar[]).map(String);
  // $4 is referenced in every case: Postgres must be able to type each parameter it is given
  const test = t.op === 'exists' ? '$4::text[] IS NULL' : t.op === 'ne' ? 'NOT (value = ANY($4::text[]))' : 'value = ANY($4::text[])';
  return {
    table: 'predicted_traits',
    cond: `trait = $2 AND confidence >= $3 AND ${test}
           AND NOT EXISTS (SELECT 1 FROM people g WHERE g.profile_key = predicted_traits.profile_key AND g.traits ?| $5::text[])`,
    params: [trait, t.minConfidence ?? 0, values, GIVEN_BY[trait]],
  };
}

/** Moves a condition's placeholders `$2`… up by `by` (conditions are combined into one statement). */
const shift = (cond: string, by: number) => cond.replace(/\$(\d+)/g, (_, d: string) => `$${Number(d) + by}`);

/**
 * Several fact leaves (each possibly negated) checked together among the people of `$1`: one
 * statement, one primary-key lookup per person for all the `people` leaves at once and one per
 * other leaf — scalar subqueries, which Postgres runs per person and never turns into joins.
 */
function allQuery(checks: readonly { leaf: FactLeaf; negated: boolean }[], nowMs: number): { sql: string; params: unknown[] } {
  const params: unknown[] = [];
  const add = (c: { cond: string; params: unknown[] }) => {
    const cond = shift(c.cond, params.length);
    params.push(...c.params);
    return cond;
  };
  const onPeople: string[] = [];
  const quals: string[] = [];
  for (const { leaf, negated } of checks) {
    const c = leafCondition(leaf, nowMs);
    const cond = add(c);
    if (c.table === 'people' && !negated) onPeople.push(`(${cond})`);
    else if (c.table === 'people') onPeople.push(`(${cond}) IS NOT TRUE`);
    else if (c.atLeast === undefined) quals.push(`(SELECT true FROM ${c.table} WHERE profile_key = w.key AND ${cond} LIMIT 1) IS ${negated ? 'NULL' : 'NOT NULL'}`);
    else {
      params.push(c.atLeast);
      quals.push(`coalesce((SELECT sum(n) FROM ${c.table} WHERE profile_key = w.key AND ${cond}), 0) ${negated ? '<' : '>='} $${params.length + 1}`);
    }
  }
  // a negated people leaf also holds for a key without a people row; with a positive one beside it the row must exist anyway
  const positiveOnPeople = checks.some((c) => !c.negated && leafCondition(c.leaf, nowMs).table === 'people');
  if (onPeople.length > 0) {
    const row = `(SELECT true FROM people WHERE profile_key = w.key AND ${onPeople.join(' AND ')} LIMIT 1)`;
    quals.unshift(positiveOnPeople ? `${row} IS NOT NULL` : `(${row} IS NOT NULL OR NOT EXISTS (SELECT 1 FROM people WHERE profile_key = w.key))`);
  }
  return { sql: `SELECT w.key AS profile_key FROM unnest($1::text[]) AS w(key) WHERE ${quals.join(' AND ')}`, params };
}

/** Runs `fn` in one transaction (no retries: an HTTP request or the next sweep round tries again). */
async function transaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** Inserts an audience's watch rows (profile key → instant in ms). */
async function writeWatch(client: PoolClient, id: string, watch: ReadonlyMap<string, number>): Promise<void> {
  if (watch.size === 0) return;
  await client.query(
    'INSERT INTO audience_watch (audience_id, profile_key, due_at) SELECT $1, k, to_timestamp(ms / 1000.0) FROM unnest($2::text[], $3::float8[]) AS w(k, ms)',
    [id, [...watch.keys()], [...watch.values()]],
  );
}

/**
 * The Postgres side of audiences. Services hold no SQL: query-api's routes and the segmenter's
 * audience sweep go through this.
 */
export function createAudienceStore(pool: Pool) {
  return {
    /** The profile keys a fact leaf holds for at `nowMs`, optionally only among `within`. */
    async leafKeys(leaf: FactLeaf, nowMs: number, within?: readonly string[]): Promise<string[]> {
      const q = leafQuery(leaf, nowMs, within !== undefined);
      // in key order, the lookups walk the primary key's pages in order (≈ 1.5× faster at 1 M people)
      const { rows } = await pool.query<{ profile_key: string }>(q.sql, [within ? [...within].sort() : null, ...q.params]);
      return rows.map((r) => r.profile_key);
    },

    /** Those of `within` for whom every check holds (a negated check: its leaf does not hold), in one statement. */
    async holdingAll(checks: readonly { leaf: FactLeaf; negated: boolean }[], nowMs: number, within: readonly string[]): Promise<string[]> {
      if (within.length === 0) return [];
      const q = allQuery(checks, nowMs);
      const { rows } = await pool.query<{ profile_key: string }>(q.sql, [[...within].sort(), ...q.params]);
      return rows.map((r) => r.profile_key);
    },

    /**
     * Each fact leaf for one person at `nowMs` (docs/api.md §5.4 explain): whether it holds — the
     * very condition `leafKeys` and `holdingAll` test, so a person's answer agrees with theirs — and
     * the value it compared: the stage, the tier, the trait's value (null when absent), whether the
     * person follows the target, the number of events counted in the window. One statement; a key
     * without a people row holds no leaf and has nulls and zeros.
     */
    async observe(leaves: readonly FactLeaf[], nowMs: number, key: string): Promise<{ holds: boolean; observed: unknown }[]> {
      if (leaves.length === 0) return [];
      const params: unknown[] = [key];
      const cols = leaves.map((leaf, i) => {
        const c = leafCondition(leaf, nowMs);
        const cond = shift(c.cond, params.length - 1);
        params.push(...c.params);
        const of = (expr: string) => `(SELECT ${expr} FROM ${c.table} WHERE profile_key = $1)`;
        if (c.atLeast !== undefined) return `coalesce((SELECT sum(n) FROM ${c.table} WHERE profile_key = $1 AND ${cond}), 0)::float8 AS o${i}`;
        if (c.table === 'predicted_traits' && 'trait' in leaf) {
          // observed: the stored prediction the leaf compared (§5.9), whatever its confidence
          const trait = `$${params.push(leaf.trait.name.slice('predicted.'.length))}::text`;
          return `EXISTS (SELECT 1 FROM ${c.table} WHERE profile_key = $1 AND ${cond}) AS h${i}, (SELECT jsonb_build_object('value', value, 'confidence', confidence) FROM ${c.table} WHERE profile_key = $1 AND trait = ${trait}) AS o${i}`;
        }
        if (c.table !== 'people') return `EXISTS (SELECT 1 FROM ${c.table} WHERE profile_key = $1 AND ${cond}) AS o${i}`;
        let seen = 'stage' in leaf ? 'to_jsonb(stage)' : 'tier' in leaf ? `to_jsonb(${leaf.tier.value ? 'value_tier' : 'social_tier'})` : '';
        if ('trait' in leaf) seen = `traits -> $${params.push(leaf.trait.name)}::text`;
        return `coalesce(${of(`(${cond})`)}, false) AS h${i}, ${of(seen)} AS o${i}`;
      });
      const { rows } = await pool.query<Record<string, unknown>>(`SELECT ${cols.join(', ')}`, params);
      const row = rows[0]!;
      return leaves.map((leaf, i) => {
        const observed = row[`o${i}`] ?? null;
        if ('did' in leaf) return { holds: (observed as number) >= leaf.did.atLeast, observed };
        if ('follows' in leaf) return { holds: observed === true, observed };
        return { holds: row[`h${i}`] === true, observed };
      });
    },

    /**
     * Postgres's own estimate of how many rows a leaf reads (an upper bound on the people it holds
     * for): the planner's selectivity, at the cost of a plan. For a `did` leaf it is the daily rows
     * before grouping — the estimate after `HAVING sum(n) >= N` is a guess, the rows are what the
     * index read costs.
     */
    async estimate(leaf: FactLeaf, nowMs: number): Promise<number> {
      // A numeric trait comparison has no index (trait names are open) and Postgres's guess for
      // `(traits ->> name)::numeric > v` is a fixed small fraction: count it as everyone, so the
      // planner checks it last, among the people the other leaves left.
      const unindexed = 'trait' in leaf && ['gt', 'gte', 'lt', 'lte'].includes(leaf.trait.op);
      const q = unindexed ? { sql: 'SELECT profile_key FROM people WHERE $1::text[] IS NULL', params: [] } : leafQuery(leaf, nowMs, false);
      type Node = { 'Plan Rows': number; 'Node Type': string; Plans?: Node[] };
      const { rows } = await pool.query<{ 'QUERY PLAN': [{ Plan: Node }] }>(`EXPLAIN (FORMAT JSON) ${q.sql}`, [null, ...q.params]);
      const plan = rows[0]!['QUERY PLAN'][0].Plan;
      return plan['Node Type'] === 'Aggregate' && plan.Plans?.[0] ? plan.Plans[0]['Plan Rows'] : plan['Plan Rows'];
    },

    /** Every profile key (the universe a top-level `not` subtracts from), or those of `within` that are profiles. */
    async everyone(within?: readonly string[]): Promise<string[]> {
      const { rows } = await pool.query<{ profile_key: string }>(
        'SELECT profile_key FROM people WHERE ($1::text[] IS NULL OR profile_key = ANY($1::text[]))',
        [within ?? null],
      );
      return rows.map((r) => r.profile_key);
    },

    /**
     * The people of `keys` whose data may be used for personalization (docs/model.md §4.5,
     * docs/api.md §5.7): the ONE place audiences and similar lists filter on consent (an opted-out
     * person is in no audience and no similar list).
     */
    async personalizationAllowed(keys: readonly string[]): Promise<string[]> {
      const allowed = await personalizationAllowed(pool, keys);
      return keys.filter((k) => allowed.has(k));
    },

    /**
     * Saves an audience with its members and the instants their membership can next change by time
     * alone (`watch`: profile key → ms), in one transaction.
     */
    async create(a: { id: string; name: string; rule: unknown; members: readonly string[]; watch: ReadonlyMap<string, number>; nowMs: number }): Promise<AudienceRow> {
      const at = new Date(a.nowMs).toISOString();
      await transaction(pool, async (client) => {
        await client.query('INSERT INTO audiences (id, name, rule, created_at, refreshed_at) VALUES ($1, $2, $3, $4, $4)', [a.id, a.name, JSON.stringify(a.rule), at]);
        await client.query('INSERT INTO audience_members (audience_id, profile_key, entered_at) SELECT $1, k, $3 FROM unnest($2::text[]) k', [a.id, a.members, at]);
        await writeWatch(client, a.id, a.watch);
      });
      // Members pages walk the primary key in order; right after a bulk insert, before autovacuum
      // analyzes the table, the planner underestimates the audience and sorts instead (100× slower).
      if (a.members.length >= ANALYZE_AFTER) await pool.query('ANALYZE audience_members');
      return { id: a.id, name: a.name, rule: a.rule, count: a.members.length, createdAt: at };
    },

    async list(): Promise<AudienceRow[]> {
      const { rows } = await pool.query<{ id: string; name: string; rule: unknown; created_at: Date; count: number }>(
        `SELECT a.id, a.name, a.rule, a.created_at, (SELECT count(*)::int FROM audience_members m WHERE m.audience_id = a.id) AS count
         FROM audiences a ORDER BY a.created_at, a.id`,
      );
      return rows.map((r) => ({ id: r.id, name: r.name, rule: r.rule, count: r.count, createdAt: r.created_at.toISOString() }));
    },

    async get(id: string): Promise<AudienceRow | undefined> {
      const { rows } = await pool.query<{ id: string; name: string; rule: unknown; created_at: Date; count: number }>(
        `SELECT a.id, a.name, a.rule, a.created_at, (SELECT count(*)::int FROM audience_members m WHERE m.audience_id = a.id) AS count
         FROM audiences a WHERE a.id = $1`,
        [id],
      );
      const r = rows[0];
      return r && { id: r.id, name: r.name, rule: r.rule, count: r.count, createdAt: r.created_at.toISOString() };
    },

    /** Deletes an audience and its members; true when it existed. */
    async remove(id: string): Promise<boolean> {
      const { rowCount } = await pool.query('DELETE FROM audiences WHERE id = $1', [id]);
      return (rowCount ?? 0) > 0;
    },

    /**
     * A page of members in profile-key order after `after`: keyset paging over the stored
     * membership, so a member appears at most once across pages however the membership changes
     * meanwhile, and every member present throughout the paging appears exactly once.
     */
    async members(id: string, after: string | undefined, limit: number): Promise<{ members: string[]; more: boolean }> {
      const { rows } = await pool.query<{ profile_key: string }>(
        `SELECT profile_key FROM audience_members WHERE audience_id = $1 AND ($2::text IS NULL OR profile_key > $2)
         ORDER BY profile_key LIMIT $3`,
        [id, after ?? null, limit + 1],
      );
      return { members: rows.slice(0, limit).map((r) => r.profile_key), more: rows.length > limit };
    },

    /** The saved audiences (id, rule, instant of the last full evaluation), for the sweep. */
    async all(): Promise<{ id: string; rule: unknown; refreshedAtMs: number | null }[]> {
      const { rows } = await pool.query<{ id: string; rule: unknown; refreshed_at: Date | null }>('SELECT id, rule, refreshed_at FROM audiences ORDER BY id');
      return rows.map((r) => ({ id: r.id, rule: r.rule, refreshedAtMs: r.refreshed_at?.getTime() ?? null }));
    },

    /**
     * Replaces an audience's members by `members` and records every entry and exit in the outbox,
     * in one transaction (published iff recorded). The audience row is locked, so two sweeps of
     * one audience take turns. Returns the number of entries and exits (0/0 when it was deleted).
     *
     * With `among`, only those people are considered: `members` are the ones of them in the
     * audience now, the others of them leave it, nobody else changes. With `watch`, the people's
     * next instants of change by time alone are replaced too (all of the audience's without
     * `among`); the last full evaluation's instant is recorded when `among` is absent.
     */
    async refresh(
      id: string,
      members: readonly string[],
      nowMs: number,
      options: { among?: readonly string[]; watch?: ReadonlyMap<string, number> } = {},
    ): Promise<{ entered: number; exited: number }> {
      const at = new Date(nowMs).toISOString();
      const among = options.among ?? null;
      return transaction(pool, async (client) => {
        const { rowCount } = await client.query('SELECT 1 FROM audiences WHERE id = $1 FOR UPDATE', [id]);
        if (!rowCount) return { entered: 0, exited: 0 };
        const { rows } = await client.query<{ change: string; n: number }>(
          `WITH cur AS (SELECT DISTINCT k FROM unnest($2::text[]) k),
           gone AS (SELECT profile_key FROM audience_members WHERE audience_id = $1 AND ($4::text[] IS NULL OR profile_key = ANY($4::text[]))
                    EXCEPT SELECT k FROM cur),
           exits AS (DELETE FROM audience_members m USING gone WHERE m.audience_id = $1 AND m.profile_key = gone.profile_key RETURNING m.profile_key),
           enters AS (INSERT INTO audience_members (audience_id, profile_key, entered_at) SELECT $1, k, $3 FROM cur ON CONFLICT DO NOTHING RETURNING profile_key),
           changes AS (SELECT profile_key, 'exit' AS change FROM exits UNION ALL SELECT profile_key, 'enter' FROM enters),
           out AS (INSERT INTO audience_outbox (profile_key, payload)
                   SELECT profile_key, jsonb_build_object('audienceId', $1::text, 'id', profile_key, 'change', change, 'at', $3::text)
                   FROM changes ORDER BY change DESC, profile_key RETURNING payload ->> 'change' AS change)
           SELECT change, count(*)::int AS n FROM out GROUP BY change`,
          [id, members, at, among],
        );
        if (options.watch) {
          await client.query('DELETE FROM audience_watch WHERE audience_id = $1 AND ($2::text[] IS NULL OR profile_key = ANY($2::text[]))', [id, among]);
          await writeWatch(client, id, options.watch);
        }
        if (among === null) await client.query('UPDATE audiences SET refreshed_at = $2 WHERE id = $1', [id, at]);
        const n = (c: string) => rows.find((r) => r.change === c)?.n ?? 0;
        return { entered: n('enter'), exited: n('exit') };
      });
    },

    /** Up to `limit` (audience, person) pairs whose next change by time alone is due at `nowMs`, earliest first. */
    async due(nowMs: number, limit: number): Promise<Map<string, string[]>> {
      const { rows } = await pool.query<{ audience_id: string; profile_key: string }>(
        'SELECT audience_id, profile_key FROM audience_watch WHERE due_at <= $1 ORDER BY due_at LIMIT $2',
        [new Date(nowMs).toISOString(), limit],
      );
      const out = new Map<string, string[]>();
      for (const r of rows) out.set(r.audience_id, [...(out.get(r.audience_id) ?? []), r.profile_key]);
      return out;
    },

    /**
     * Records that messages naming `ids` are being applied at `nowMs` (the sweep re-checks their
     * people). Erased ids (§5.7) are never recorded; an erasure deletes those recorded before it.
     */
    async touch(ids: readonly string[], nowMs: number): Promise<void> {
      // In id order, as forgetTouched deletes: two statements locking the same rows in different
      // orders deadlock (seen in bench:soak, a chunk's touch against the sweep's delete).
      const distinct = [...new Set(ids)].sort();
      if (distinct.length === 0) return;
      await pool.query(
        `INSERT INTO audience_touched (id, touched_at)
         SELECT t.id, $3::timestamptz FROM unnest($1::text[], $2::text[]) AS t(id, digest)
         WHERE NOT EXISTS (SELECT 1 FROM suppressed_ids s WHERE s.digest = t.digest)
         ORDER BY t.id
         ON CONFLICT (id) DO UPDATE SET touched_at = greatest(audience_touched.touched_at, excluded.touched_at)`,
        [distinct, distinct.map(idDigest), new Date(nowMs).toISOString()],
      );
    },

    /** The people (profile keys, merged ids resolved) named by messages applied after `sinceMs`. */
    async touchedSince(sinceMs: number): Promise<string[]> {
      const { rows } = await pool.query<{ k: string }>(
        `SELECT DISTINCT coalesce(i.profile_key, t.id) AS k FROM audience_touched t LEFT JOIN identities i ON i.id = t.id WHERE t.touched_at > $1`,
        [new Date(sinceMs).toISOString()],
      );
      return rows.map((r) => r.k);
    },

    /** Forgets ids touched at or before `beforeMs`; returns how many. */
    async forgetTouched(beforeMs: number): Promise<number> {
      const { rowCount } = await pool.query(
        `DELETE FROM audience_touched WHERE id IN (
           SELECT id FROM audience_touched WHERE touched_at <= $1 ORDER BY id FOR UPDATE)`,
        [new Date(beforeMs).toISOString()],
      );
      return rowCount ?? 0;
    },

    /**
     * For the people of `within` a `did` leaf holds for at `nowMs`: the instant it stops holding if
     * they do nothing more — the start of the UTC day on which the window no longer reaches the
     * latest day from which on they still did it `atLeast` times.
     */
    async didHoldsUntil(leaf: Extract<FactLeaf, { did: unknown }>, nowMs: number, within: readonly string[]): Promise<Map<string, number>> {
      const q = leafQuery(leaf, nowMs, true);
      const c = leafCondition(leaf, nowMs);
      const atLeast = `$${c.params.length + 2}`;
      // the leaf's own query gives who holds; their counted days, newest first, give until when
      const sql = `WITH holds AS (${q.sql}),
        days AS (SELECT profile_key, day, sum(n) OVER (PARTITION BY profile_key ORDER BY day DESC) AS since
                 FROM ${c.table} JOIN holds USING (profile_key) WHERE ${c.cond})
        SELECT profile_key, (max(day) FILTER (WHERE since >= ${atLeast}) + $${q.params.length + 2}::int)::text AS until FROM days GROUP BY profile_key`;
      const { rows } = await pool.query<{ profile_key: string; until: string | null }>(sql, [[...within].sort(), ...q.params, leaf.did.inLastDays]);
      const out = new Map<string, number>();
      for (const r of rows) if (r.until !== null) out.set(r.profile_key, Date.parse(`${r.until}T00:00:00Z`));
      return out;
    },

    /**
     * The non-interest components of the §5.3 vector, per person: money spent in the base currency
     * over the last 365 days and social interactions (likes, comments, shares, favorites) over the
     * current UTC day and the 29 before it (the daily aggregates).
     */
    async similarityFacts(keys: readonly string[], nowMs: number): Promise<Map<string, { spend: number; social: number }>> {
      const out = new Map<string, { spend: number; social: number }>(keys.map((k) => [k, { spend: 0, social: 0 }]));
      if (keys.length === 0) return out;
      const { rows } = await pool.query<{ k: string; spend: string | null; social: string | null }>(
        `SELECT k,
                (SELECT sum(base_amount) FROM purchases p WHERE p.profile_key = k AND p.occurred_at > $2) AS spend,
                (SELECT sum(n) FROM activity_daily a WHERE a.profile_key = k AND a.type IN (${SOCIAL_TYPES_SQL}) AND a.day >= $3) AS social
         FROM unnest($1::text[]) k`,
        [keys, new Date(nowMs - 365 * DAY_MS).toISOString(), utcDay(nowMs - 29 * DAY_MS)],
      );
      for (const r of rows) out.set(r.k, { spend: Number(r.spend ?? 0), social: Number(r.social ?? 0) });
      return out;
    },
  };
}

export type AudienceStore = ReturnType<typeof createAudienceStore>;
