import { envInt, parseEnv, sharedEnv } from '@pstream/platform';
import { z } from 'zod';

export const SCOPES = ['profiles:read', 'audiences:write', 'privacy:write', 'ops:read'] as const;
export type Scope = (typeof SCOPES)[number];

/** `token=scope+scope,token2=*`: each bearer token and its scopes; `*` grants all. */
const apiTokens = z
  .string()
  .min(1, 'at least one API token is required')
  .transform((v, ctx) => {
    const map = new Map<string, Set<Scope>>();
    for (const entry of v.split(',').map((s) => s.trim()).filter(Boolean)) {
      const eq = entry.indexOf('=');
      const token = entry.slice(0, eq);
      const scopes = entry.slice(eq + 1).split('+');
      if (eq <= 0 || scopes.some((s) => s !== '*' && !SCOPES.includes(s as Scope))) {
        ctx.addIssue({ code: 'custom', message: `entry "${entry.slice(0, 8)}…" is not token=scope+scope (scopes: ${SCOPES.join(', ')}, or *)` });
        return z.NEVER;
      }
      map.set(token, new Set(scopes.includes('*') ? SCOPES : (scopes as Scope[])));
    }
    return map;
  });

const schema = z.object({
  ...sharedEnv('REDIS_URL', 'REDIS_CLUSTER_NODES', 'REDIS_PREFIX', 'DATABASE_URL', 'PG_SCHEMA', 'BASE_CURRENCY', 'LOG_LEVEL', 'DECAY_HALF_LIFE_DAYS', 'DECAY_LANDMARK'),
  QUERY_API_HOST: z.string().default('0.0.0.0'),
  /** Port of the query API. */
  QUERY_API_PORT: envInt(8081, 1),
  /** Bearer tokens and their scopes. */
  API_TOKENS: apiTokens,
  /** Upper end of the tag value S-curve (SPEC §4.1). */
  INTEREST_VALUE_SCALE: z.coerce.number().positive().default(10),
});

export type QueryConfig = z.output<typeof schema>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): QueryConfig {
  return parseEnv(schema, env);
}
