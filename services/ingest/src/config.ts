import { commonEnv, envInt, parseEnv } from '@pstream/platform';
import { z } from 'zod';

/** `key=source,key2=source2`: each write key and the source its events are stamped with. */
const writeKeys = z
  .string()
  .min(1, 'at least one write key is required')
  .transform((v, ctx) => {
    const map = new Map<string, string>();
    for (const [i, entry] of v.split(',').map((s) => s.trim()).filter(Boolean).entries()) {
      const [key, source] = entry.split('=');
      if (!key || !source) {
        // Named by position: the entry may be a bare write key, which must not reach the start-up log.
        ctx.addIssue({ code: 'custom', message: `entry ${i + 1} is not key=source` });
        return z.NEVER;
      }
      map.set(key, source);
    }
    return map;
  });

/** An origin as browsers send it: scheme://host[:port], no path; "*" allows any. */
const ORIGIN = /^https?:\/\/[^/\s:]+(:\d{1,5})?$/;
const origins = (list: string[], where: string, ctx: z.RefinementCtx): string[] => {
  const lower = list.map((o) => o.toLowerCase());
  for (const o of lower) if (o !== '*' && !ORIGIN.test(o)) ctx.addIssue({ code: 'custom', message: `${where}"${o}" is not an origin like https://shop.example or http://localhost:3000` });
  return lower;
};

/** Origins allowed for every write key, comma-separated. */
const corsOrigins = z
  .string()
  .default('')
  .transform((v, ctx) => origins(v.split(',').map((s) => s.trim()).filter(Boolean), '', ctx));

/** `key=origin|origin,key2=origin`: origins allowed for one write key only. */
const corsOriginsByKey = z
  .string()
  .default('')
  .transform((v, ctx) => {
    const map = new Map<string, string[]>();
    v.split(',').map((s) => s.trim()).filter(Boolean).forEach((entry, i) => {
      const eq = entry.indexOf('=');
      const key = entry.slice(0, eq);
      const list = entry.slice(eq + 1).split('|').map((s) => s.trim()).filter(Boolean);
      // The entry is named by position: printing it would put a write key in the start-up log.
      if (eq <= 0 || list.length === 0) ctx.addIssue({ code: 'custom', message: `entry ${i + 1} is not key=origin|origin` });
      else map.set(key, origins(list, `entry ${i + 1}: `, ctx));
    });
    return map;
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
  WRITE_KEYS: writeKeys,
  /** How long to wait for Kafka's acks=all before answering 503. */
  PRODUCE_TIMEOUT_MS: envInt(5000, 100),
  /** After a failed send, answer 503 at once for this long instead of waiting on Kafka again. */
  KAFKA_BREAKER_MS: envInt(1000, 0),
  /** Requests per second each write key may make, per ingest instance (token bucket refill). */
  RATE_LIMIT_PER_SEC: envInt(200, 1),
  /** Requests a write key may make in a burst, per instance (token bucket size). */
  RATE_LIMIT_BURST: envInt(400, 1),
  /** The whole request (headers and body) must arrive within this; slower clients get 408. */
  REQUEST_TIMEOUT_MS: envInt(10_000, 100),
  /** Browser origins (https://shop.example) allowed to post with any write key; "*" allows every origin. */
  CORS_ORIGINS: corsOrigins,
  /** Browser origins allowed for one write key, `key=origin|origin` comma-separated. */
  CORS_ORIGINS_BY_KEY: corsOriginsByKey,
}).superRefine((c, ctx) => {
  // Compared as sets of keys only; the key itself never goes into the message.
  const unknown = [...c.CORS_ORIGINS_BY_KEY.keys()].filter((k) => !c.WRITE_KEYS.has(k)).length;
  if (unknown > 0) ctx.addIssue({ code: 'custom', path: ['CORS_ORIGINS_BY_KEY'], message: `${unknown} entr${unknown === 1 ? 'y names a key' : 'ies name keys'} not in WRITE_KEYS` });
});

export type IngestConfig = z.output<typeof schema>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): IngestConfig {
  return parseEnv(schema, env);
}
