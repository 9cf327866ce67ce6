import { commonEnv, envInt, envPairs, parseEnv } from '@pstream/platform';
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

const schema = z.object({
  KAFKA_BROKERS: commonEnv.KAFKA_BROKERS,
  EVENTS_TOPIC: commonEnv.EVENTS_TOPIC,
  LOG_LEVEL: commonEnv.LOG_LEVEL,
  /** Interface to listen on. */
  INGEST_HOST: z.string().default('0.0.0.0'),
  /** Port of the tracking API. */
  INGEST_PORT: envInt(8080, 1),
  /** Write keys and their sources, `key=source` comma-separated. */
  WRITE_KEYS: writeKeysEnv(),
  /** How long to wait for Kafka's acks=all before answering 503. */
  PRODUCE_TIMEOUT_MS: envInt(5000, 100),
  /** After a failed send, answer 503 at once for this long instead of waiting on Kafka again. */
  KAFKA_BREAKER_MS: envInt(1000, 0),
  /** Requests per second each write key may make, across all ingest instances (on average). */
  RATE_LIMIT_PER_SEC: envInt(200, 1),
  /** Requests a write key may make at once: the limit counts windows of BURST/PER_SEC seconds. */
  RATE_LIMIT_BURST: envInt(400, 1),
  /** Holds the shared rate-limit counters. */
  REDIS_URL: commonEnv.REDIS_URL,
  REDIS_PREFIX: commonEnv.REDIS_PREFIX,
  /** How long a rate-limit check waits for Redis before falling back to the per-instance limit. */
  RATE_LIMIT_REDIS_TIMEOUT_MS: envInt(100, 1),
  /** The whole request (headers and body) must arrive within this; slower clients get 408. */
  REQUEST_TIMEOUT_MS: envInt(10_000, 100),
});

export type IngestConfig = z.output<typeof schema>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): IngestConfig {
  return parseEnv(schema, env);
}
