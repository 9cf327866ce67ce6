import { MAX_MERGED_IDS } from '@pstream/events';
import { DEFAULT_HALF_LIFE_DAYS, DEFAULT_VALUE_SCALE } from '@pstream/scoring';
import { z } from 'zod';
import { AppError, describeIssues, PlatformErrors } from './errors';

/**
 * Booleans from the environment: only "true"/"1" are true and "false"/"0" false.
 * z.coerce.boolean() would read "false" as true, so it is never used.
 */
export const envBoolean = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0'])
    .default(fallback ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1');

/** A positive integer read from an environment string. */
export const envInt = (fallback: number, min = 0) => z.coerce.number().int().min(min).default(fallback);

/** A comma-separated list; blanks are dropped. */
export const envList = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((v) =>
      v
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0),
    );

/**
 * A `key=value,key2=value2` setting (WRITE_KEYS, API_TOKENS, CURRENCY_RATES) as a Map. Pairs are
 * split at their first `=` (values may contain `=`), blanks around them are dropped, and each key
 * and value is checked with its schema. An error quotes the bad pair and its position (parseEnv
 * adds the variable's name); with `secretKeys`, only the first 4 characters of a key are shown,
 * so a log of a failed start-up does not leak a credential.
 */
export function envPairs<K extends z.ZodType<string>, V extends z.ZodType>(options: {
  /** How a pair looks, for the error: `key=source`, `CODE=rate (e.g. USD=7.1)`. */
  format: string;
  key: K;
  value: V;
  /** Used when the variable is unset; without it the variable is required. */
  fallback?: string;
  /** At least one pair is required. */
  nonEmpty?: boolean;
  secretKeys?: boolean;
}) {
  const base = options.fallback === undefined ? z.string() : z.string().default(options.fallback);
  return base.transform((text, ctx) => {
    const map = new Map<z.output<K>, z.output<V>>();
    const pairs = text
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
    const fail = (i: number, pair: string, why: string) => {
      // A secret key is shown by its first 4 characters only, also when the pair has no "=" (a bare key).
      const eq = pair.indexOf('=');
      const keyEnd = eq < 0 ? pair.length : eq;
      const shown = options.secretKeys && keyEnd > 4 ? `${pair.slice(0, 4)}…${pair.slice(keyEnd)}` : pair;
      ctx.addIssue({ code: 'custom', message: `pair ${i + 1} "${shown}" is not ${options.format}: ${why}` });
      return z.NEVER;
    };
    for (const [i, pair] of pairs.entries()) {
      const eq = pair.indexOf('=');
      if (eq < 0) return fail(i, pair, 'no "="');
      const key = options.key.safeParse(pair.slice(0, eq).trim());
      if (!key.success) return fail(i, pair, `key ${key.error.issues[0]?.message ?? 'invalid'}`);
      const value = options.value.safeParse(pair.slice(eq + 1).trim());
      if (!value.success) return fail(i, pair, `value ${value.error.issues[0]?.message ?? 'invalid'}`);
      if (map.has(key.data)) return fail(i, pair, 'the key appears twice');
      map.set(key.data, value.data);
    }
    if (options.nonEmpty && map.size === 0) {
      ctx.addIssue({ code: 'custom', message: `at least one ${options.format} pair is required` });
      return z.NEVER;
    }
    return map;
  });
}

/** Settings every service shares: where the servers are and how to log. */
export const commonEnv = {
  /** Comma-separated Kafka bootstrap servers. */
  KAFKA_BROKERS: envList('127.0.0.1:9092').pipe(z.array(z.string()).min(1)),
  /** Topic of accepted, normalized events (docs/events.md §3.4). */
  EVENTS_TOPIC: z.string().min(1).default('profile.events.v1'),
  /** Topic for messages a consumer could not use. */
  DLQ_TOPIC: z.string().min(1).default('profile.events.dlq.v1'),
  /** Topic of lifecycle transitions. */
  LIFECYCLE_TOPIC: z.string().min(1).default('profile.lifecycle.v1'),
  /** Topic of audience entries and exits (docs/api.md §5.4). */
  AUDIENCES_TOPIC: z.string().min(1).default('profile.audiences.v1'),
  /** Redis connection URL. */
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379/0'),
  /**
   * Redis Cluster seed nodes `host:port`, comma-separated. Set, it selects a Cluster client
   * (`createRedis`) and REDIS_URL gives only credentials/TLS; empty means the one REDIS_URL server.
   */
  REDIS_CLUSTER_NODES: envList('').pipe(z.array(z.string().regex(/^\[?[^\s\]]+\]?:\d{1,5}$/, 'want host:port'))),
  /** Prefix of every Redis key; lets several deployments (or tests) share one Redis. */
  REDIS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]*$/)
    .default('ps'),
  /** Postgres connection URL. */
  DATABASE_URL: z.string().url().default('postgres://postgres@127.0.0.1:5432/profiles'),
  /** Postgres schema holding our tables; lets several deployments (or tests) share one database. */
  PG_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/)
    .default('public'),
  /** ISO-4217 code that monetary totals are kept in (docs/model.md §4.2). */
  BASE_CURRENCY: z
    .string()
    .regex(/^[A-Z]{3}$/)
    .default('CNY'),
  /** pino level. */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Half-life of interest decay in days (docs/model.md §4.1). */
  DECAY_HALF_LIFE_DAYS: z.coerce.number().positive().default(DEFAULT_HALF_LIFE_DAYS),
  /** Forward-decay landmark L as an ISO time; fixed for the life of the stored data. */
  DECAY_LANDMARK: z.iso.datetime({ offset: true }).default('2026-01-01T00:00:00Z'),
  /** Upper end of the tag value S-curve (docs/model.md §4.1): value = scale·tanh(score/scale). */
  INTEREST_VALUE_SCALE: z.coerce.number().positive().default(DEFAULT_VALUE_SCALE),
  /**
   * How long an applied event id is remembered for dedupe, in hours (docs/events.md §3.3: at least 24 h); scorer and
   * segmenter.
   */
  DEDUPE_WINDOW_HOURS: envInt(72, 24),
  /**
   * Most ids one profile takes in by merges (docs/model.md §4.4); a link past it is refused, logged and counted. Same
   * value for the scorer and the segmenter.
   */
  MAX_MERGED_IDS: envInt(MAX_MERGED_IDS, 1),
} as const;

/**
 * The shared settings a service actually reads, by name: a service validates only what it uses,
 * so a bad value for another service's setting (the scorer's view of DATABASE_URL, say) never
 * stops it.
 */
export function sharedEnv<K extends keyof typeof commonEnv>(...names: K[]): Pick<typeof commonEnv, K> {
  return Object.fromEntries(names.map((name) => [name, commonEnv[name]])) as Pick<typeof commonEnv, K>;
}

/**
 * Parses the environment with a service's schema. Every problem is reported at once, naming
 * the variable, so a bad deployment fails at start-up with one readable message.
 */
export function parseEnv<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv): z.output<S> {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  throw new AppError(
    PlatformErrors.CONFIG_INVALID,
    `invalid configuration: ${describeIssues(result.error.issues, '(env)')}`,
  );
}
