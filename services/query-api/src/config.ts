import { envBoolean, envInt, envList, envPairs, keyringEnv, parseEnv, sharedEnv } from '@pstream/platform';
import { PREWARM_MODES, QUERY_PREWARM } from '@pstream/profile-store';
import { z } from 'zod';

export const SCOPES = ['profiles:read', 'audiences:write', 'privacy:write', 'ops:read'] as const;
export type Scope = (typeof SCOPES)[number];

/** `token=scope+scope,token2=*`: each bearer token and its scopes; `*` grants all. */
const apiTokens = envPairs({
  format: `token=scope+scope (scopes: ${SCOPES.join(', ')}, or *)`,
  key: z.string().min(1, 'is empty'),
  value: z
    .string()
    .transform((v) => v.split('+').map((s) => s.trim()))
    .refine((scopes) => scopes.every((s) => s === '*' || SCOPES.includes(s as Scope)), 'names an unknown scope')
    .transform((scopes) => new Set<Scope>(scopes.includes('*') ? SCOPES : (scopes as Scope[]))),
  nonEmpty: true,
  secretKeys: true,
});

const schema = z.object({
  // Kafka's brokers and the DLQ topic serve the consumer-lag sampler of /ops/lag.
  ...sharedEnv(
    'REDIS_URL',
    'REDIS_CLUSTER_NODES',
    'REDIS_PREFIX',
    'DATABASE_URL',
    'PG_SCHEMA',
    'BASE_CURRENCY',
    'LOG_LEVEL',
    'DECAY_HALF_LIFE_DAYS',
    'DECAY_LANDMARK',
    'INTEREST_VALUE_SCALE',
    'KAFKA_BROKERS',
    'DLQ_TOPIC',
  ),
  // The erasure destroys the person keys (docs/privacy.md); the subject key names them.
  ...keyringEnv,
  QUERY_API_HOST: z.string().default('0.0.0.0'),
  /** Port of the query API. */
  QUERY_API_PORT: envInt(8081, 1),
  /** The whole request must arrive within this, else 408 QRY_REQUEST_TIMEOUT. */
  REQUEST_TIMEOUT_MS: envInt(10_000, 100),
  /** Bearer tokens and their scopes. */
  API_TOKENS: apiTokens,
  /** Rule evaluations (previews, new audiences) one instance runs at once; more are answered 429. */
  PREVIEW_CONCURRENCY: envInt(4, 1),
  /**
   * Statements at once a rule evaluation splits a per-person check of many candidates into (≥ 2 000 people each), one
   * Postgres core each; 1: one statement.
   */
  PREVIEW_PARALLEL: envInt(2, 1),
  /**
   * Postgres cancels each statement of a rule evaluation (preview, explain, new audience) after this (ms); answered 503
   * QRY_RULE_TOO_COSTLY.
   */
  PREVIEW_STATEMENT_TIMEOUT_MS: envInt(5000, 1),
  /** Followers whose interests are read for a target's top interests (§5.5); exact below it, a uniform sample above. */
  FOLLOWERS_SAMPLE_SIZE: envInt(2000, 100),
  /**
   * Connections to Redis the sample's states (~2 MB at 2 000 followers) are read over at once, a share each (one
   * Redis server; a Cluster reads per node anyway): Redis writes 64 KB of a client's replies per turn of its loop.
   */
  FOLLOWERS_READ_CONNECTIONS: envInt(4, 1),
  /**
   * Connections to Redis /similar reads its candidates' states over at once (~450 KB for 400), a share each: the same
   * extra connections as the followers' (one Redis server; a Cluster reads per node).
   */
  SIMILAR_READ_CONNECTIONS: envInt(4, 1),
  /**
   * Relations read at start so the first requests find their pages cached (pg_prewarm, migration 210;
   * docs/operations.md "Prewarming"): `relation=mode` pairs, mode `buffer` (into shared_buffers), `read` (into the OS
   * page cache) or `prefetch` (the OS reads it in the background); empty: none. In the background, after listening.
   */
  PG_PREWARM: envPairs({
    format: `relation=mode (mode: ${PREWARM_MODES.join(', ')})`,
    key: z.string().regex(/^[a-z_][a-z0-9_]*$/, 'is not a table or index name'),
    value: z.enum(PREWARM_MODES),
    fallback: [...QUERY_PREWARM].map(([relation, mode]) => `${relation}=${mode}`).join(','),
  }),
  /** Followers per target in the overlap sketch (§5.5); exact while both targets have at most this many. */
  FOLLOWERS_SKETCH_SIZE: envInt(10_000, 100),
  /** How often an erasure whose Redis step failed is retried (ms). */
  ERASURE_RETRY_MS: envInt(5000, 100),
  /** Consumer groups whose lag `/ops/lag` reports (docs/api.md §5.8); `*` for every group of the cluster. */
  LAG_GROUPS: envList('scorer,segmenter').pipe(z.array(z.string()).min(1, 'name at least one group, or *')),
  /** How often the lag sampler reads committed and end offsets from Kafka's admin API. */
  LAG_SAMPLE_INTERVAL_MS: envInt(5000, 100),
  /** Commits per partition in Burrow's sliding window (at least 2). */
  LAG_WINDOW: envInt(10, 2),
  /** Predicted traits (docs/api.md §5.9): how often each model is retrained (ms; default daily). */
  MODEL_RETRAIN_INTERVAL_MS: envInt(86_400_000, 1000),
  /**
   * After a run that trained nothing for a trait (fewer than two classes given yet), how long (ms; default an hour)
   * before the trainer tries it again on its own; POST /v1/models/{trait}/train asks at once.
   */
  MODEL_RETRY_INTERVAL_MS: envInt(3_600_000, 1000),
  /** How often the trainer looks for a requested or overdue training (ms). */
  MODEL_POLL_INTERVAL_MS: envInt(30_000, 50),
  /** Share of the people who gave a trait held out to measure the model's accuracy. */
  MODEL_HOLDOUT_FRACTION: z.coerce.number().gt(0).lt(1).default(0.2),
  /** Whether this instance trains models ("true"/"1"); with several instances one trains at a time anyway. */
  MODEL_TRAINING: envBoolean(true),
});

export type QueryConfig = z.output<typeof schema>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): QueryConfig {
  return parseEnv(schema, env);
}
