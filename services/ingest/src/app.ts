import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { AppError, createHttp, registerOpsRoutes, type ReadinessCheck, type Registry } from '@pstream/platform';
import type { FastifyInstance } from 'fastify';
import type { Logger } from '@pstream/platform';
import { createWriteKeyCheck, presentedWriteKey } from './auth';
import type { IngestConfig } from './config';
import { IngestErrors } from './errors';
import type { Publisher } from './publisher';
import { registerEventRoutes } from './routes/events';

declare module 'fastify' {
  interface FastifyRequest {
    /** The source named by the request's write key. */
    source: string;
  }
}

export type IngestDeps = { log: Logger; publisher: Publisher; checks: ReadinessCheck[]; metrics: Registry };

/** Body limit after decompression (SPEC §3.3). */
export const BODY_LIMIT = 512 * 1024;

/** Builds the ingest app without listening; main.ts listens, tests use `inject`. */
export async function buildApp(config: IngestConfig, deps: IngestDeps): Promise<FastifyInstance> {
  const app = createHttp(deps.log, { bodyLimit: BODY_LIMIT, requestTimeout: 30_000 });
  app.decorateRequest('source', '');

  await app.register(swagger, {
    openapi: {
      info: { title: 'pstream ingest', version: '0.1.0', description: 'Tracking API: events in, Kafka out.' },
      components: {
        securitySchemes: {
          basicAuth: { type: 'http', scheme: 'basic', description: 'write key as the username, empty password' },
          writeKey: { type: 'apiKey', in: 'header', name: 'X-Write-Key' },
        },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  registerOpsRoutes(app, { checks: deps.checks, metrics: deps.metrics });

  const sourceOf = createWriteKeyCheck(config.WRITE_KEYS);
  app.addHook('onRequest', async (request, reply) => {
    if (!request.url.startsWith('/v1/')) return;
    const source = sourceOf(presentedWriteKey(request));
    if (source === undefined) {
      return reply.code(401).send({ error: 'Unauthorized', message: 'unknown or missing write key' });
    }
    request.source = source;
  });

  app.setErrorHandler((err: Error & { statusCode?: number }, request, reply) => {
    if (err instanceof AppError && err.code === IngestErrors.KAFKA_UNAVAILABLE) {
      request.log.warn({ err }, 'events not acknowledged by Kafka');
      return reply.code(503).header('Retry-After', '5').send({ error: 'Service Unavailable', code: err.code, message: err.message });
    }
    const status = err.statusCode ?? 500;
    if (status < 500) return reply.code(status).send({ error: httpName(status), message: err.message });
    request.log.error({ err, request }, 'request failed');
    return reply.code(500).send({ error: 'Internal Server Error', message: 'internal error' });
  });

  registerEventRoutes(app, { publisher: deps.publisher });
  return app;
}

function httpName(status: number): string {
  return ({ 400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found', 413: 'Payload Too Large', 415: 'Unsupported Media Type' } as Record<number, string>)[status] ?? 'Error';
}
