import type { Pool } from '@pstream/platform';
import { allQuery, leafCondition, leafQuery, shift, type FactLeaf } from './audience-sql';
import { personalizationAllowed } from './privacy';

/** The fewest people a statement of a split check gets (below it, one more round trip costs more than it saves). */
export const MIN_PART = 2000;

export type LeafReaderOptions = {
  /**
   * How many statements at once a check of many people is split into (`MIN_PART` people each at
   * least), each on its own connection of the pool: Postgres runs one statement on one core, and a
   * check of 20 000 candidates is ~20 000 key lookups of one core. 1: one statement.
   */
  parallel?: number;
};

/**
 * The fact leaves of audience rules answered by Postgres (docs/api.md §5.4): who a leaf holds for,
 * several leaves at once, one person's leaves for explain, plan estimates, the universe of a
 * top-level `not`, the consent filter, and until when a `did` leaf keeps holding.
 */
export function createLeafReader(pool: Pool, options: LeafReaderOptions = {}) {
  const parallel = Math.max(1, Math.floor(options.parallel ?? 1));
  /**
   * The keys `run` keeps of `keys`, sorted: one statement per contiguous part of the sorted keys,
   * the parts at once. In key order the lookups walk the primary key's pages in order (≈ 1.5×
   * faster at 1 M people); the answer is the same whatever the split.
   */
  async function byParts(keys: readonly string[], run: (part: string[]) => Promise<string[]>): Promise<string[]> {
    const sorted = [...keys].sort();
    const n = Math.min(parallel, Math.floor(sorted.length / MIN_PART)) || 1;
    if (n === 1) return run(sorted);
    const size = Math.ceil(sorted.length / n);
    const parts = Array.from({ length: n }, (_, i) => sorted.slice(i * size, (i + 1) * size));
    return (await Promise.all(parts.map(run))).flat();
  }
  const keysOf = async (sql: string, params: unknown[]) =>
    (await pool.query<{ profile_key: string }>(sql, params)).rows.map((r) => r.profile_key);

  return {
    /** The profile keys a fact leaf holds for at `nowMs`, optionally only among `within`. */
    async leafKeys(leaf: FactLeaf, nowMs: number, within?: readonly string[]): Promise<string[]> {
      const q = leafQuery(leaf, nowMs, within !== undefined);
      if (within === undefined) return keysOf(q.sql, [null, ...q.params]);
      return byParts(within, (part) => keysOf(q.sql, [part, ...q.params]));
    },

    /** Those of `within` for whom every check holds (a negated check: its leaf does not hold), one statement per part. */
    async holdingAll(
      checks: readonly { leaf: FactLeaf; negated: boolean }[],
      nowMs: number,
      within: readonly string[],
    ): Promise<string[]> {
      if (within.length === 0) return [];
      const q = allQuery(checks, nowMs);
      return byParts(within, (part) => keysOf(q.sql, [part, ...q.params]));
    },

    /**
     * Each fact leaf for one person at `nowMs` (docs/api.md §5.4 explain): whether it holds — the
     * very condition `leafKeys` and `holdingAll` test, so a person's answer agrees with theirs — and
     * the value it compared: the stage, the tier, the trait's value (null when absent), whether the
     * person follows the target, the number of events counted in the window. One statement; a key
     * without a people row holds no leaf and has nulls and zeros.
     */
    async observe(
      leaves: readonly FactLeaf[],
      nowMs: number,
      key: string,
    ): Promise<{ holds: boolean; observed: unknown }[]> {
      if (leaves.length === 0) return [];
      const params: unknown[] = [key];
      const cols = leaves.map((leaf, i) => {
        const c = leafCondition(leaf, nowMs);
        const cond = shift(c.cond, params.length - 1);
        const count = shift(c.count ?? 'n', params.length - 1);
        params.push(...c.params);
        const of = (expr: string) => `(SELECT ${expr} FROM ${c.table} WHERE profile_key = $1)`;
        if (c.atLeast !== undefined)
          return `coalesce((SELECT sum(${count}) FROM ${c.table} WHERE profile_key = $1 AND ${cond}), 0)::float8 AS o${i}`;
        if (c.table === 'predicted_traits' && 'trait' in leaf) {
          // observed: the stored prediction the leaf compared (§5.9), whatever its confidence
          const trait = `$${params.push(leaf.trait.name.slice('predicted.'.length))}::text`;
          return `EXISTS (SELECT 1 FROM ${c.table} WHERE profile_key = $1 AND ${cond}) AS h${i}, (SELECT jsonb_build_object('value', value, 'confidence', confidence) FROM ${c.table} WHERE profile_key = $1 AND trait = ${trait}) AS o${i}`;
        }
        if (c.table !== 'people')
          return `EXISTS (SELECT 1 FROM ${c.table} WHERE profile_key = $1 AND ${cond}) AS o${i}`;
        let seen =
          'stage' in leaf
            ? 'to_jsonb(stage)'
            : 'tier' in leaf
              ? `to_jsonb(${leaf.tier.value ? 'value_tier' : 'social_tier'})`
              : '';
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
     * before grouping — the estimate after `HAVING sum(…) >= N` is a guess, the rows are what the
     * index read costs.
     */
    async estimate(leaf: FactLeaf, nowMs: number): Promise<number> {
      // A numeric trait comparison has no index (trait names are open) and Postgres's guess for
      // `(traits ->> name)::numeric > v` is a fixed small fraction: count it as everyone, so the
      // planner checks it last, among the people the other leaves left.
      const unindexed = 'trait' in leaf && ['gt', 'gte', 'lt', 'lte'].includes(leaf.trait.op);
      const q = unindexed
        ? { sql: 'SELECT profile_key FROM people WHERE $1::text[] IS NULL', params: [] }
        : leafQuery(leaf, nowMs, false);
      type Node = { 'Plan Rows': number; 'Node Type': string; Plans?: Node[] };
      const { rows } = await pool.query<{ 'QUERY PLAN': [{ Plan: Node }] }>(`EXPLAIN (FORMAT JSON) ${q.sql}`, [
        null,
        ...q.params,
      ]);
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
     * For the people of `within` a `did` leaf holds for at `nowMs`: the instant it stops holding if
     * they do nothing more — the start of the UTC day on which the window no longer reaches the
     * latest day from which on they still did it `atLeast` times.
     */
    async didHoldsUntil(
      leaf: Extract<FactLeaf, { did: unknown }>,
      nowMs: number,
      within: readonly string[],
    ): Promise<Map<string, number>> {
      const q = leafQuery(leaf, nowMs, true);
      const c = leafCondition(leaf, nowMs);
      const atLeast = `$${c.params.length + 2}`;
      // the leaf's own query gives who holds; their counted days, newest first, give until when
      const sql = `WITH holds AS (${q.sql}),
        days AS (SELECT profile_key, day, sum(${c.count ?? 'n'}) OVER (PARTITION BY profile_key ORDER BY day DESC) AS since
                 FROM ${c.table} JOIN holds USING (profile_key) WHERE ${c.cond})
        SELECT profile_key, (max(day) FILTER (WHERE since >= ${atLeast}) + $${q.params.length + 2}::int)::text AS until FROM days GROUP BY profile_key`;
      const { rows } = await pool.query<{ profile_key: string; until: string | null }>(sql, [
        [...within].sort(),
        ...q.params,
        leaf.did.inLastDays,
      ]);
      const out = new Map<string, number>();
      for (const r of rows) if (r.until !== null) out.set(r.profile_key, Date.parse(`${r.until}T00:00:00Z`));
      return out;
    },
  };
}
