import { commonEnv, envInt, parseEnv } from '@pstream/platform';
import { z } from 'zod';

const schema = z.object({
  ...commonEnv,
  /** Port of /healthz, /readyz and /metrics. */
  SEGMENTER_PORT: envInt(8083, 1),
  SEGMENTER_HOST: z.string().default('0.0.0.0'),
  /** Consumer group of the segmenters; N instances share the partitions. */
  SEGMENTER_GROUP: z.string().min(1).default('segmenter'),
});

export type SegmenterConfig = z.output<typeof schema>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): SegmenterConfig {
  return parseEnv(schema, env);
}
