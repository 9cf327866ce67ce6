import type { Rule } from '@pstream/audience-rules';
import { DAY_MS } from '@pstream/events';
import { GIVEN_BY, type PredictedTrait } from '@pstream/traits-model';
import { TAG_LIST_SQL, TYPED_TAGS_SQL } from './fold';

/*
 * The leaf SQL compiler of audiences (docs/api.md §5.4): a rule's fact leaf as a condition on one
 * table, as a query of the profile keys it holds for (each from an index: migrations 002 and 005),
 * and several leaves checked together among given people. Pure: it builds SQL and runs none
 * (audience-leaves.ts runs it).
 */

/**
 * The fact leaves of §5.4: the leaves of the rule schema (@pstream/audience-rules) that Postgres
 * answers: every leaf kind but `interest` (Redis's). A kind added to the schema is a fact leaf here,
 * and `leafCondition` does not compile until it handles it.
 */
export type FactLeaf = Exclude<Rule, { all: unknown } | { any: unknown } | { not: unknown } | { interest: unknown }>;
type Scalar = string | number | boolean;

export const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/**
 * The SQL of a leaf: a query of profile keys (`profile_key`); `$1` is the restriction (people to
 * check) or NULL. Unrestricted, it reads the leaf's own index. Restricted, it is driven by the keys:
 * one lookup per person on the table's primary key (a LATERAL subquery the planner cannot turn
 * into a join) — however many people the leaf holds for overall. A plain `unnest($1) JOIN table`
 * let Postgres, which knows the array's length, hash-join against a scan of the whole leaf
 * instead (200 000 rows of a city to check 20 000 people: 2–3× slower at 1 M people).
 */
export function leafQuery(leaf: FactLeaf, nowMs: number, restricted: boolean): { sql: string; params: unknown[] } {
  const { table, cond, params, atLeast, count = 'n' } = leafCondition(leaf, nowMs);
  if (atLeast === undefined) {
    return restricted
      ? {
          sql: `SELECT x.profile_key FROM unnest($1::text[]) AS w(key) CROSS JOIN LATERAL (SELECT profile_key FROM ${table} WHERE profile_key = w.key AND ${cond} LIMIT 1) x`,
          params,
        }
      : { sql: `SELECT profile_key FROM ${table} WHERE $1::text[] IS NULL AND ${cond}`, params };
  }
  const n = `$${params.length + 2}`;
  return restricted
    ? {
        sql: `SELECT w.key AS profile_key FROM unnest($1::text[]) AS w(key) CROSS JOIN LATERAL (SELECT sum(${count}) AS n FROM ${table} WHERE profile_key = w.key AND ${cond}) x WHERE x.n >= ${n}`,
        params: [...params, atLeast],
      }
    : {
        sql: `SELECT profile_key FROM ${table} WHERE $1::text[] IS NULL AND ${cond} GROUP BY profile_key HAVING sum(${count}) >= ${n}`,
        params: [...params, atLeast],
      };
}

/**
 * A leaf as a condition on one table's rows (`$2`… are `params`); `atLeast`: the rows' summed
 * `count` (an expression of a row: how many events it counts) must reach it.
 */
export function leafCondition(
  leaf: FactLeaf,
  nowMs: number,
): { table: string; cond: string; params: unknown[]; atLeast?: number; count?: string } {
  if ('stage' in leaf) return { table: 'people', cond: 'stage = ANY($2::text[])', params: [leaf.stage.in] };
  if ('tier' in leaf) {
    const col = leaf.tier.value ? 'value_tier' : 'social_tier';
    return { table: 'people', cond: `${col} = ANY($2::text[])`, params: [leaf.tier.value ?? leaf.tier.social] };
  }
  if ('follows' in leaf)
    return {
      table: 'follows',
      cond: 'target_type = $2 AND target_id = $3 AND following',
      params: [leaf.follows.type, leaf.follows.id],
    };
  if ('did' in leaf) {
    const d = leaf.did;
    const window = [d.type, utcDay(nowMs - (d.inLastDays - 1) * DAY_MS), utcDay(nowMs)];
    // `activity` (migration 070): a row counts `n` events on its target, each with all of `tags`
    // (a tag as often as it appears there); a row without a target counts towards tags only
    const base = 'type = $2 AND day BETWEEN $3 AND $4';
    if (d.tag !== undefined)
      return {
        table: 'activity',
        cond: `${base} AND ${TYPED_TAGS_SQL} @> ARRAY[$2 || E'\\x1f' || $5::text]`,
        params: [...window, d.tag],
        atLeast: d.atLeast,
        count: `n * cardinality(array_positions(${TAG_LIST_SQL}, $5::text))`,
      };
    if (d.target !== undefined) {
      return {
        table: 'activity',
        cond: `${base} AND target_type = $5 AND target_id = $6`,
        params: [...window, d.target.type, d.target.id],
        atLeast: d.atLeast,
        count: 'n',
      };
    }
    return {
      table: 'activity',
      cond: `${base} AND target_type IS NOT NULL`,
      params: window,
      atLeast: d.atLeast,
      count: 'n',
    };
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
      return {
        table: 'people',
        cond: `jsonb_typeof(traits -> $2) = 'number' AND (traits ->> $2)::numeric ${op} $3`,
        params: [t.name, t.value],
      };
    }
  }
}

/**
 * A trait leaf on a prediction (§5.9): the stored predictions of `predicted_traits` at or above
 * `minConfidence`, for people who have not given the trait since (a given trait always wins).
 * `ne` holds only for people predicted another value; the rule schema allows eq, ne, in, exists.
 */
function predictedCondition(t: Extract<FactLeaf, { trait: unknown }>['trait']): {
  table: string;
  cond: string;
  params: unknown[];
} {
  const trait = t.name.slice('predicted.'.length) as PredictedTrait;
  const values = t.op === 'exists' ? null : ([] as Scalar[]).concat(t.value as Scalar | Scalar[]).map(String);
  // $4 is referenced in every case: Postgres must be able to type each parameter it is given
  const test =
    t.op === 'exists'
      ? '$4::text[] IS NULL'
      : t.op === 'ne'
        ? 'NOT (value = ANY($4::text[]))'
        : 'value = ANY($4::text[])';
  return {
    table: 'predicted_traits',
    cond: `trait = $2 AND confidence >= $3 AND ${test}
           AND NOT EXISTS (SELECT 1 FROM people g WHERE g.profile_key = predicted_traits.profile_key AND g.traits ?| $5::text[])`,
    params: [trait, t.minConfidence ?? 0, values, GIVEN_BY[trait]],
  };
}

/** Moves a condition's placeholders `$2`… up by `by` (conditions are combined into one statement). */
export const shift = (cond: string, by: number) => cond.replace(/\$(\d+)/g, (_, d: string) => `$${Number(d) + by}`);

/**
 * Several fact leaves (each possibly negated) checked together among the people of `$1`: one
 * statement, one primary-key lookup per person for all the `people` leaves at once and one per
 * other leaf — scalar subqueries, which Postgres runs per person and never turns into joins.
 */
export function allQuery(
  checks: readonly { leaf: FactLeaf; negated: boolean }[],
  nowMs: number,
): { sql: string; params: unknown[] } {
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
    else if (c.atLeast === undefined)
      quals.push(
        `(SELECT true FROM ${c.table} WHERE profile_key = w.key AND ${cond} LIMIT 1) IS ${negated ? 'NULL' : 'NOT NULL'}`,
      );
    else {
      const count = shift(c.count ?? 'n', params.length - c.params.length);
      params.push(c.atLeast);
      quals.push(
        `coalesce((SELECT sum(${count}) FROM ${c.table} WHERE profile_key = w.key AND ${cond}), 0) ${negated ? '<' : '>='} $${params.length + 1}`,
      );
    }
  }
  // a negated people leaf also holds for a key without a people row; with a positive one beside it the row must exist
  // anyway
  const positiveOnPeople = checks.some((c) => !c.negated && leafCondition(c.leaf, nowMs).table === 'people');
  if (onPeople.length > 0) {
    const row = `(SELECT true FROM people WHERE profile_key = w.key AND ${onPeople.join(' AND ')} LIMIT 1)`;
    quals.unshift(
      positiveOnPeople
        ? `${row} IS NOT NULL`
        : `(${row} IS NOT NULL OR NOT EXISTS (SELECT 1 FROM people WHERE profile_key = w.key))`,
    );
  }
  return { sql: `SELECT w.key AS profile_key FROM unnest($1::text[]) AS w(key) WHERE ${quals.join(' AND ')}`, params };
}
