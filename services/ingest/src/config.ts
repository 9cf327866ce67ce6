import { commonEnv, envInt, parseEnv } from '@pstream/platform';
import { z } from 'zod';

/** `key=source,key2=source2`: each write key and the source its events are stamped with. */
const writeKeys = z
  .string()
  .min(1, 'at least one write key is required')
  .transform((v, ctx) => {
    const map = new Map<string, string>();
    for (const entry of v.split(',').map((s) => s.trim()).filter(Boolean)) {
      const [key, source] = entry.split('=');
      if (!key || !source) {
        ctx.addIssue({ code: 'custom', message: `entry "${entry}" is not key=source` });
        return z.NEVER;
      }
      map.set(key, source);
    }
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
});

export type IngestConfig = z.output<typeof schema>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): IngestConfig {
  return parseEnv(schema, env);
}
