import pg from 'pg';
import { timestamptzArrayParser, timestamptzParser } from './pg-dates';

export type { Pool, PoolClient } from 'pg';

// BIGINT counters and NUMERIC money arrive as strings by default; ours fit a double.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (v) => Number(v));
// Timestamps by character position, the default parser for any shape but ISO's (pg-dates.ts).
pg.types.setTypeParser(
  pg.types.builtins.TIMESTAMPTZ,
  timestamptzParser(pg.types.getTypeParser(pg.types.builtins.TIMESTAMPTZ)),
);
const TIMESTAMPTZ_ARRAY = 1185 as unknown as typeof pg.types.builtins.TIMESTAMPTZ; // timestamptz[], not among the builtins
pg.types.setTypeParser(TIMESTAMPTZ_ARRAY, timestamptzArrayParser(pg.types.getTypeParser(TIMESTAMPTZ_ARRAY)));

/**
 * A connection pool whose sessions see `schema` first, so tests can each own a schema, and never
 * JIT-compile a statement. Our statements are short lookups and writes by key; JIT pays off only for
 * long analytic scans, and its compile time follows the planner's cost ESTIMATE, not the work: on a
 * table never analyzed (autovacuum off) the segmenter's evaluation statement for a 500-event chunk was
 * estimated at 514 000, past `jit_inline_above_cost`, and spent 1.5 s compiling a 99 ms statement —
 * the apply rate fell from 2 000 to 270 events/s at once (BENCHMARKS.md, "Soak", issue 21).
 *
 * A connection idle for 10 s is closed, except the `min` most recently used: a pool whose load comes
 * and goes otherwise opens connections again at each rise, and a request waiting on a new one waits
 * for the connection, a new backend and its first plans (BENCHMARKS.md "Reads", issue 21).
 * `settings` are further session settings of its connections (e.g. `{ plan_cache_mode: … }`).
 */
export function createPool(
  url: string,
  schema: string,
  name: string,
  max = 10,
  min = 0,
  settings: Readonly<Record<string, string>> = {},
): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    min,
    application_name: name,
    options: `-c search_path=${schema},public -c jit=off${sessionSettings(settings)}`,
  });
  // An idle client losing its server must not crash the process; the next query reconnects.
  pool.on('error', () => undefined);
  return pool;
}

/**
 * A second pool to the same database and schema as `pool` whose every statement Postgres cancels
 * after `ms` (SQLSTATE 57014, see `isStatementTimeout`): for queries whose cost the caller's input
 * decides. `settings` are further session settings of its connections (e.g. `{ jit: 'off' }`).
 * Ended by its owner.
 */
export function statementBoundPool(
  pool: pg.Pool,
  ms: number,
  settings: Readonly<Record<string, string>> = {},
): pg.Pool {
  const bound = new pg.Pool({
    ...pool.options,
    options: `${pool.options.options ?? ''} -c statement_timeout=${ms}${sessionSettings(settings)}`.trim(),
  });
  bound.on('error', () => undefined);
  return bound;
}

/** Session settings as a connection's `options`: ` -c name=value` each. */
const sessionSettings = (settings: Readonly<Record<string, string>>) =>
  Object.entries(settings)
    .map(([name, value]) => ` -c ${name}=${value}`)
    .join('');

/** Whether Postgres cancelled a statement for running past its statement_timeout. */
export function isStatementTimeout(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === '57014';
}

/** Ends a pool once; a second call is a no-op. */
export async function closePool(pool: pg.Pool): Promise<void> {
  if (pool.ended) return;
  await pool.end();
}

const TIMESTAMPTZ_OID = 1184;
/** A `timestamptz` as Postgres writes it in UTC with at most millisecond precision, years 1000-9999. */
const UTC_MS = /^([1-9]\d{3}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.(\d{1,3}))?\+00$/;
const defaultTimestamptz = pg.types.getTypeParser(TIMESTAMPTZ_OID, 'text') as (text: string) => Date;

/**
 * A `timestamptz` value's text as `Date#toISOString` writes it, the same string the driver's
 * `Date` would give, without building the `Date`: for a UTC value (the sessions' time zone) of
 * at most millisecond precision the text is rearranged; anything else goes through the driver's
 * parser.
 */
export function isoOfTimestamptz(text: string): string {
  const m = UTC_MS.exec(text);
  if (m === null) return defaultTimestamptz(text).toISOString();
  return `${m[1]}T${m[2]}.${m[3] === undefined ? '000' : m[3].padEnd(3, '0')}Z`;
}

/**
 * The driver's type parsers, except that `timestamptz` columns come back as ISO-8601 strings
 * (`isoOfTimestamptz`) instead of `Date`s: for a query whose answer prints them anyway (pass as
 * the query's `types`).
 */
export const isoTimestampTypes = {
  getTypeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
    if (oid === TIMESTAMPTZ_OID && (format ?? 'text') === 'text') return isoOfTimestamptz;
    return pg.types.getTypeParser(oid, format ?? 'text') as (value: string) => unknown;
  },
};
