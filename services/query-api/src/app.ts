import { keys } from '@pstream/interest-store';
import { createFactsReader } from '@pstream/profile-store';
import { createHttp, openApiPlugin } from '@pstream/http';
import { registerOpsRoutes, type ReadinessCheck, type Registry } from '@pstream/platform';
import { decayParams } from '@pstream/scoring';
import type { FastifyInstance } from 'fastify';
import type { Redis } from '@pstream/platform';
import type { Pool } from '@pstream/platform';
import type { Logger } from '@pstream/platform';
import { createTokenGuard } from './auth';
import type { QueryConfig } from './config';
import type { LagSampler } from './lag/sampler';
import { interestSchema, interestsSchema, registerInterestRoutes } from './routes/interests';
import { registerOpsPage } from './routes/ops';
import { MAX_ID_PARAM_LENGTH } from './routes/params';
import { profileSchema, registerProfileRoutes } from './routes/profiles';

export type QueryDeps = {
  log: Logger;
  redis: Redis;
  pool: Pool;
  checks: ReadinessCheck[];
  metrics: Registry;
  /** Consumer lag for `/ops/lag` and `/ops`; those routes answer 503 without it. */
  lag?: LagSampler;
};

/** Builds the query API without listening; main.ts listens, tests use `inject`. */
export async function buildApp(config: QueryConfig, deps: QueryDeps): Promise<FastifyInstance> {
  const app = createHttp(deps.log, { prefix: 'QRY' }, { routerOptions: { maxParamLength: MAX_ID_PARAM_LENGTH } });
  await app.register(openApiPlugin, {
    title: 'pstream query API',
    version: '0.1.0',
    description:
      'Profiles, interests and lifecycle over REST (docs/api.md §5). Bearer tokens from API_TOKENS, each with scopes. ' +
      'Every error answers `{ "error": { "code", "message", "details"? } }` with a `QRY_` code; every answer carries `X-Request-Id`.',
    servers: [{ url: `http://127.0.0.1:${config.QUERY_API_PORT}`, description: 'a local instance (pnpm start)' }],
    tags: [{ name: 'profiles', description: 'A person’s profile and interests; any id (userId or anonymousId) resolves to its person' }],
    securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'a token from API_TOKENS with the profiles:read scope' } },
    schemas: { Profile: profileSchema, Interest: interestSchema, Interests: interestsSchema },
  });
  registerOpsRoutes(app, { checks: deps.checks, metrics: deps.metrics });

  const guard = createTokenGuard(config.API_TOKENS);
  const facts = createFactsReader(deps.pool);
  registerProfileRoutes(app, {
    redis: deps.redis,
    keys: keys(config.REDIS_PREFIX),
    facts,
    decay: decayParams(config.DECAY_LANDMARK, config.DECAY_HALF_LIFE_DAYS),
    valueScale: config.INTEREST_VALUE_SCALE,
    baseCurrency: config.BASE_CURRENCY,
    guard: guard('profiles:read'),
  });
  registerInterestRoutes(app, { redis: deps.redis, keys: keys(config.REDIS_PREFIX), facts, decay: decayParams(config.DECAY_LANDMARK, config.DECAY_HALF_LIFE_DAYS), valueScale: config.INTEREST_VALUE_SCALE, guard: guard('profiles:read') });
  await registerOpsPage(app, { lag: deps.lag, guard: guard('ops:read') });
  return app;
}
