import { envInt, envPairs, keyringEnv, parseEnv, sharedEnv } from '@pstream/platform';
import { z } from 'zod';

/** `key=source,key2=source2`: each write key and the source its events are stamped with. */
export const writeKeysEnv = (fallback?: string) =>
  envPairs({
    format: 'key=source',
    key: z.string().min(1, 'is empty'),
    value: z.string().min(1, 'is empty'),
    fallback,
    nonEmpty: true,
    secretKeys: true,
  });

/** An origin as browsers send it: scheme://host[:port], no path; "*" allows any. */
const ORIGIN = /^https?:\/\/[^/\s:]+(:\d{1,5})?$/;
const origins = (list: string[], where: string, ctx: z.RefinementCtx): string[] => {
  const lower = list.map((o) => o.toLowerCase());
  for (const o of lower)
    if (o !== '*' && !ORIGIN.test(o))
      ctx.addIssue({
        code: 'custom',
        message: `${where}"${o}" is not an origin like https://shop.example or http://localhost:3000`,
      });
  return lower;
};

/** Origins allowed for every write key, comma-separated. */
const corsOrigins = z
  .string()
  .default('')
  .transform((v, ctx) =>
    origins(
      v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
      '',
      ctx,
    ),
  );

/** `key=origin|origin,key2=origin`: origins allowed for one write key only (the one key=value parser). */
const corsOriginsByKey = envPairs({
  format: 'key=origin|origin',
  key: z.string().min(1, 'is empty'),
  value: z.string().transform((v, ctx) => {
    const list = v
      .split('|')
      .map((s) => s.trim())
      .filter(Boolean);
    if (list.length === 0) ctx.addIssue({ code: 'custom', message: 'names no origin' });
    return origins(list, '', ctx);
  }),
  fallback: '',
  secretKeys: true,
});

const schema = z
  .object({
    // REDIS_URL (or REDIS_CLUSTER_NODES) and REDIS_PREFIX hold the shared rate-limit counters.
    ...sharedEnv('KAFKA_BROKERS', 'EVENTS_TOPIC', 'LOG_LEVEL', 'REDIS_URL', 'REDIS_CLUSTER_NODES', 'REDIS_PREFIX'),
    // DATABASE_URL and PG_SCHEMA reach the person keys every event is sealed with (docs/privacy.md).
    ...sharedEnv('DATABASE_URL', 'PG_SCHEMA'),
    ...keyringEnv,
    /** Interface to listen on. */
    INGEST_HOST: z.string().default('0.0.0.0'),
    /** Port of the tracking API. */
    INGEST_PORT: envInt(8080, 1),
    /**
     * Processes serving the port (`node:cluster` workers; 1 = this process alone). A Node process uses about one
     * core, so a machine that runs ingest alone wants one per core; `pnpm start` shares two cores with every other
     * service and server, hence 1 (src/workers.ts).
     */
    INGEST_WORKERS: z.coerce.number().int().min(1).max(64).default(1),
    /** Write keys and their sources, `key=source` comma-separated. */
    WRITE_KEYS: writeKeysEnv(),
    /** How long to wait for Kafka's acks=all before answering 503. */
    PRODUCE_TIMEOUT_MS: envInt(5000, 100),
    /** After a failed send, answer 503 at once for this long instead of waiting on Kafka again. */
    KAFKA_BREAKER_MS: envInt(1000, 0),
    /**
     * How long a request's events may wait for other requests' to share one Kafka send when a send could start at
     * once (0: never wait; while sends are under way requests share the next one anyway). 2 ms cut ingest's CPU per
     * event by a fifth and the broker's by two fifths in BENCHMARKS.md (ingest, round 4).
     */
    PRODUCE_LINGER_MS: envInt(2, 0),
    /** Requests per second each write key may make, across all ingest instances (on average). */
    RATE_LIMIT_PER_SEC: envInt(200, 1),
    /** Requests a write key may make at once: the limit counts windows of BURST/PER_SEC seconds. */
    RATE_LIMIT_BURST: envInt(400, 1),
    /** How long a rate-limit check waits for Redis before falling back to the per-instance limit. */
    RATE_LIMIT_REDIS_TIMEOUT_MS: envInt(100, 1),
    /** The whole request (headers and body) must arrive within this; slower clients get 408. */
    REQUEST_TIMEOUT_MS: envInt(10_000, 100),
    /** Browser origins (https://shop.example) allowed to post with any write key; "*" allows every origin. */
    CORS_ORIGINS: corsOrigins,
    /** Browser origins allowed for one write key, `key=origin|origin` comma-separated. */
    CORS_ORIGINS_BY_KEY: corsOriginsByKey,
  })
  .superRefine((c, ctx) => {
    // Compared as sets of keys only; the key itself never goes into the message.
    const unknown = [...c.CORS_ORIGINS_BY_KEY.keys()].filter((k) => !c.WRITE_KEYS.has(k)).length;
    if (unknown > 0)
      ctx.addIssue({
        code: 'custom',
        path: ['CORS_ORIGINS_BY_KEY'],
        message: `${unknown} entr${unknown === 1 ? 'y names a key' : 'ies name keys'} not in WRITE_KEYS`,
      });
  });

export type IngestConfig = z.output<typeof schema>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): IngestConfig {
  return parseEnv(schema, env);
}
