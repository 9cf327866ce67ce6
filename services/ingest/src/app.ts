import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { AppError, createHttp, registerOpsRoutes, type Logger, type ReadinessCheck, type Redis, type Registry } from '@pstream/platform';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform, serializerCompiler } from 'fastify-type-provider-zod';
import { createWriteKeyCheck, presentedWriteKey } from './auth';
import type { IngestConfig } from './config';
import { decompressBody } from './decompress';
import { IngestErrors, type IngestErrorCode } from './errors';
import { parseJsonBody } from './json';
import type { Publisher } from './publisher';
import { registerWriteKeyLimit } from './rate-limit';
import { registerEventRoutes } from './routes/events';
import { registerIdentifyRoute } from './routes/identify';
import { registerSegmentRoutes } from './routes/segment';

declare module 'fastify' {
  interface FastifyRequest {
    /** The source named by the request's write key. */
    source: string;
  }
}

export type IngestDeps = {
  log: Logger;
  publisher: Publisher;
  checks: ReadinessCheck[];
  metrics: Registry;
  /** Holds the deployment-wide rate limit (main.ts always passes one; without it the limit is per instance). */
  redis?: Redis;
};

/** Body limit after decompression (SPEC §3.3). */
export const BODY_LIMIT = 512 * 1024;

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  503: 'Service Unavailable',
};

/** Builds the ingest app without listening; main.ts listens, tests use `inject`. */
export async function buildApp(config: IngestConfig, deps: IngestDeps): Promise<FastifyInstance> {
  const app = createHttp(deps.log, {
    // Passed to http.createServer by Fastify (not in its option types). Node only tracks request
    // deadlines when the server is created with one, and checks them every 30 s by default;
    // check often enough to honour ours.
    ...({ http: { requestTimeout: config.REQUEST_TIMEOUT_MS, connectionsCheckingInterval: Math.min(1000, config.REQUEST_TIMEOUT_MS) } } as object),
    bodyLimit: BODY_LIMIT,
    requestTimeout: config.REQUEST_TIMEOUT_MS,
    clientErrorHandler: (err, socket) => {
      const timeout = (err as Error & { code?: string }).code === 'ERR_HTTP_REQUEST_TIMEOUT';
      const status = timeout ? 408 : 400;
      const body = JSON.stringify({
        error: REASONS[status],
        code: timeout ? IngestErrors.REQUEST_TIMEOUT : IngestErrors.MALFORMED,
        message: timeout ? `the request did not arrive within ${config.REQUEST_TIMEOUT_MS} ms` : 'malformed HTTP request',
      });
      if (socket.writable) {
        socket.end(`HTTP/1.1 ${status} ${REASONS[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      } else socket.destroy();
    },
  });
  app.decorateRequest('source', '');
  app.setSerializerCompiler(serializerCompiler);

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'pstream ingest',
        version: '0.1.0',
        description:
          'Tracking API (SPEC §3): native events and Segment-compatible calls in, Kafka out. A 202 means every accepted item is on Kafka with acks=all. ' +
          'Bodies are JSON (gzip or deflate Content-Encoding accepted), at most 512 KB after decompression; an event at most 32 KB.',
      },
      tags: [
        { name: 'native', description: 'The native envelope of SPEC §3.2' },
        { name: 'segment', description: 'Segment/RudderStack SDK payloads, mapped to native events' },
      ],
      components: {
        securitySchemes: {
          basicAuth: { type: 'http', scheme: 'basic', description: 'write key as the username, empty password (Segment style)' },
          writeKey: { type: 'apiKey', in: 'header', name: 'X-Write-Key' },
        },
      },
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  registerOpsRoutes(app, { checks: deps.checks, metrics: deps.metrics });

  // Browser SDKs (analytics.js) post JSON as text/plain to avoid a CORS preflight.
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser(['application/json', 'text/plain'], { parseAs: 'string' }, parseJsonBody);
  app.addHook('preParsing', decompressBody);

  const sourceOf = createWriteKeyCheck(config.WRITE_KEYS);
  const rateLimit = await registerWriteKeyLimit(app, {
    redis: deps.redis,
    prefix: config.REDIS_PREFIX,
    ratePerSec: config.RATE_LIMIT_PER_SEC,
    burst: config.RATE_LIMIT_BURST,
    log: deps.log,
  });
  app.addHook('onRequest', async (request, reply) => {
    if (!request.url.startsWith('/v1/')) return;
    const key = presentedWriteKey(request);
    const source = sourceOf(key);
    if (source === undefined) {
      return reply.code(401).send({ error: REASONS[401], code: IngestErrors.UNAUTHORIZED, message: 'unknown or missing write key' });
    }
    const take = await rateLimit(request, key!);
    if (!take.ok) {
      return reply
        .code(429)
        .header('Retry-After', String(take.retryAfterSec))
        .send({ error: REASONS[429], code: IngestErrors.RATE_LIMITED, message: `write key past ${config.RATE_LIMIT_BURST} requests per ${config.RATE_LIMIT_BURST / config.RATE_LIMIT_PER_SEC} s; retry after ${take.retryAfterSec} s` });
    }
    request.source = source;
  });

  const retryAfter = String(Math.max(1, Math.ceil(config.KAFKA_BREAKER_MS / 1000)));
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, request, reply) => {
    if (err instanceof AppError && err.code === IngestErrors.KAFKA_UNAVAILABLE) {
      request.log.warn({ err }, 'events not acknowledged by Kafka');
      return reply.code(503).header('Retry-After', retryAfter).send({ error: REASONS[503], code: err.code, message: err.message });
    }
    const status = err.statusCode ?? 500;
    if (status >= 500) {
      request.log.error({ err, request }, 'request failed');
      return reply.code(500).send({ error: 'Internal Server Error', code: IngestErrors.INTERNAL, message: 'internal error' });
    }
    return reply.code(status).send({ error: REASONS[status] ?? 'Error', code: codeOf(status), message: err.message });
  });

  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: REASONS[404], code: IngestErrors.NOT_FOUND, message: `no route ${request.method} ${request.url.split('?')[0]}` }),
  );

  registerEventRoutes(app, { publisher: deps.publisher });
  registerIdentifyRoute(app, { publisher: deps.publisher });
  registerSegmentRoutes(app, { publisher: deps.publisher });
  return app;
}

function codeOf(status: number): IngestErrorCode {
  if (status === 413) return IngestErrors.TOO_LARGE;
  if (status === 415) return IngestErrors.UNSUPPORTED_MEDIA_TYPE;
  if (status === 400) return IngestErrors.MALFORMED;
  return IngestErrors.BAD_REQUEST;
}
