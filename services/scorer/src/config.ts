import { commonEnv, envInt, parseEnv } from '@pstream/platform';
import { z } from 'zod';

const schema = z.object({
  ...commonEnv,
  /** Port of /healthz, /readyz and /metrics. */
  SCORER_PORT: envInt(8082, 1),
  SCORER_HOST: z.string().default('0.0.0.0'),
  /** Consumer group of the scorers; N instances share the partitions. */
  SCORER_GROUP: z.string().min(1).default('scorer'),
  /** How long an applied event id is remembered for dedupe (SPEC §3.3: at least 24 h). */
  DEDUPE_WINDOW_HOURS: envInt(72, 24),
});

export type ScorerConfig = z.output<typeof schema>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): ScorerConfig {
  return parseEnv(schema, env);
}
