import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { keys } from '@pstream/interest-store';
import { createHttp, registerOpsRoutes, type ReadinessCheck, type Registry } from '@pstream/platform';
import { decayParams } from '@pstream/scoring';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { Redis } from 'ioredis';
import type { Pool } from '@pstream/platform';
import type { Logger } from '@pstream/platform';
import { createTokenGuard } from './auth';
import type { QueryConfig } from './config';
import type { LagSampler } from './lag/sampler';
import { createFactsReader } from './profiles';
import { registerInterestRoutes } from './routes/interests';
import { registerOpsPage } from './routes/ops';
import { MAX_ID_PARAM_LENGTH } from './routes/params';
import { registerProfileRoutes } from './routes/profiles';

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
  const app = createHttp(deps.log, { routerOptions: { maxParamLength: MAX_ID_PARAM_LENGTH } });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  await app.register(swagger, {
    openapi: {
      info: { title: 'pstream query API', version: '0.1.0', description: 'Profiles, interests and lifecycle over REST.' },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } } },
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  registerOpsRoutes(app, { checks: deps.checks, metrics: deps.metrics });

  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown }, request, reply) => {
    const status = err.statusCode ?? 500;
    if (status < 500) return reply.code(status).send({ error: 'Bad Request', message: err.message });
    request.log.error({ err, request }, 'request failed');
    return reply.code(500).send({ error: 'Internal Server Error', message: 'internal error' });
  });

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
