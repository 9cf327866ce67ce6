import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { AppError, createHttp, registerOpsRoutes, type Logger, type ReadinessCheck, type Registry } from '@pstream/platform';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { jsonSchemaTransform, serializerCompiler } from 'fastify-type-provider-zod';
import { createWriteKeyCheck, presentedWriteKey, sameKey } from './auth';
import type { IngestConfig } from './config';
import { allowOrigin, answerPreflight, createOriginPolicy, crossOrigin } from './cors';
import { decompressBody } from './decompress';
import { IngestErrors, type IngestErrorCode } from './errors';
import { parseJsonBody } from './json';
import type { Publisher } from './publisher';
import { createTokenBuckets } from './rate-limit';
import { registerEventRoutes } from './routes/events';
import { registerIdentifyRoute } from './routes/identify';
import { registerSegmentRoutes } from './routes/segment';
import { createSegmentCounters } from './segment-counters';

declare module 'fastify' {
  interface FastifyRequest {
    /** The source named by the request's write key. */
    source: string;
  }
}

export type IngestDeps = { log: Logger; publisher: Publisher; checks: ReadinessCheck[]; metrics: Registry };

/** Body limit after decompression (SPEC §3.3). */
export const BODY_LIMIT = 512 * 1024;

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
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
          basicAuth: { type: 'http', scheme: 'basic', description: 'write key as the username, empty password (Segment style). Browser SDKs may instead (or also) send it as `writeKey` in the JSON body.' },
          writeKey: { type: 'apiKey', in: 'header', name: 'X-Write-Key' },
        },
      },
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  registerOpsRoutes(app, { checks: deps.checks, metrics: deps.metrics });

  // Browser SDKs (analytics.js) post JSON as text/plain to avoid a CORS preflight; RudderStack's
  // node SDK posts its gzipped JSON as application/x-www-form-urlencoded (axios' default for a
  // Buffer), as does `curl -d`. Every one of them is read as JSON.
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser(['application/json', 'text/plain', 'application/x-www-form-urlencoded'], { parseAs: 'string' }, parseJsonBody);
  app.addHook('preParsing', decompressBody);

  const sourceOf = createWriteKeyCheck(config.WRITE_KEYS);
  const origins = createOriginPolicy(config.CORS_ORIGINS, config.CORS_ORIGINS_BY_KEY);
  const buckets = createTokenBuckets({ ratePerSec: config.RATE_LIMIT_PER_SEC, burst: config.RATE_LIMIT_BURST });
  const refuse = (reply: FastifyReply, status: 401 | 403 | 429, code: IngestErrorCode, message: string) => reply.code(status).send({ error: REASONS[status], code, message });
  const notAllowed = (reply: FastifyReply, origin: string) =>
    refuse(reply, 403, IngestErrors.ORIGIN_NOT_ALLOWED, `origin ${origin} is not allowed; list it in CORS_ORIGINS or CORS_ORIGINS_BY_KEY`);

  /** The write key's source, its origin and its rate, checked; undefined when the request may go on. */
  const admit = (request: FastifyRequest, reply: FastifyReply, key: string | undefined, origin: string | undefined) => {
    const source = sourceOf(key);
    if (source === undefined) {
      return refuse(reply, 401, IngestErrors.UNAUTHORIZED, 'unknown or missing write key (send it as the Basic auth username, as X-Write-Key, or as writeKey in the body)');
    }
    if (origin !== undefined && !origins.forKey(key!, origin)) return notAllowed(reply, origin);
    const take = buckets.take(key!);
    if (!take.ok) {
      return reply
        .code(429)
        .header('Retry-After', String(take.retryAfterSec))
        .send({ error: REASONS[429], code: IngestErrors.RATE_LIMITED, message: `write key past ${config.RATE_LIMIT_PER_SEC} requests/s; retry after ${take.retryAfterSec} s` });
    }
    request.source = source;
    return undefined;
  };

  // CORS preflights carry no write key: answered here, before any auth (cors.ts).
  app.options('/v1/*', { schema: { hide: true } }, async (request, reply) => {
    const origin = crossOrigin(request);
    if (origin === undefined) return reply.code(204).send();
    return origins.anyKey(origin) ? answerPreflight(request, reply, origin) : notAllowed(reply, origin);
  });

  // A write key in a header is checked before the body is read (cheap refusals). Without one,
  // the key may be `writeKey` in the JSON body (analytics.js), checked once the body is parsed.
  app.addHook('onRequest', async (request, reply) => {
    if (!request.url.startsWith('/v1/') || request.method === 'OPTIONS') return undefined;
    const origin = crossOrigin(request);
    if (origin !== undefined) {
      if (!origins.anyKey(origin)) return notAllowed(reply, origin);
      allowOrigin(reply, origin);
    }
    const key = presentedWriteKey(request);
    return key === undefined ? undefined : admit(request, reply, key, origin);
  });
  app.addHook('preHandler', async (request, reply) => {
    if (!request.url.startsWith('/v1/') || request.method === 'OPTIONS') return undefined;
    const body = request.body as { writeKey?: unknown } | undefined;
    const inBody = typeof body === 'object' && body !== null && !Array.isArray(body) && 'writeKey' in body ? body.writeKey : undefined;
    // Taken out of the body at once, so no handler, log line or error message can carry it.
    if (inBody !== undefined) delete body!.writeKey;
    if (request.source === '') return admit(request, reply, typeof inBody === 'string' && inBody !== '' ? inBody : undefined, crossOrigin(request));
    if (inBody !== undefined && !sameKey(typeof inBody === 'string' ? inBody : '', presentedWriteKey(request)!)) {
      return refuse(reply, 401, IngestErrors.UNAUTHORIZED, 'the writeKey in the body is not the write key the request was sent with');
    }
    return undefined;
  });

  const retryAfter = String(Math.max(1, Math.ceil(config.KAFKA_BREAKER_MS / 1000)));
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, request, reply) => {
    if (err instanceof AppError && err.code === IngestErrors.KAFKA_UNAVAILABLE) {
      request.log.warn({ err }, 'events not acknowledged by Kafka');
      return reply.code(503).header('Retry-After', retryAfter).send({ error: REASONS[503], code: err.code, message: err.message });
    }
    const status = err.statusCode ?? 500;
    if (status >= 500) {
      // Named fields only: the request object would carry its raw headers (Authorization, X-Write-Key)
      // and body (writeKey) into the log.
      request.log.error({ err, method: request.method, url: request.url.split('?')[0], source: request.source }, 'request failed');
      return reply.code(500).send({ error: 'Internal Server Error', code: IngestErrors.INTERNAL, message: 'internal error' });
    }
    return reply.code(status).send({ error: REASONS[status] ?? 'Error', code: codeOf(status), message: err.message });
  });

  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: REASONS[404], code: IngestErrors.NOT_FOUND, message: `no route ${request.method} ${request.url.split('?')[0]}` }),
  );

  const segment = { publisher: deps.publisher, counters: createSegmentCounters(deps.metrics) };
  registerEventRoutes(app, { publisher: deps.publisher });
  registerIdentifyRoute(app, segment);
  registerSegmentRoutes(app, segment);
  return app;
}

function codeOf(status: number): IngestErrorCode {
  if (status === 413) return IngestErrors.TOO_LARGE;
  if (status === 415) return IngestErrors.UNSUPPORTED_MEDIA_TYPE;
  if (status === 400) return IngestErrors.MALFORMED;
  return IngestErrors.BAD_REQUEST;
}
