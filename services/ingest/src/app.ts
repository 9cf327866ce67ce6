import { createHttp, HttpError, openApiPlugin, sendError } from '@pstream/http';
import { AppError, registerOpsRoutes, type Logger, type ReadinessCheck, type Redis, type Registry } from '@pstream/platform';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteShorthandOptions } from 'fastify';
import { createWriteKeyCheck, presentedWriteKey, sameKey } from './auth';
import type { IngestConfig } from './config';
import { allowOrigin, answerPreflight, createOriginPolicy, crossOrigin } from './cors';
import { decompressBody } from './decompress';
import { IngestErrors, type IngestErrorCode } from './errors';
import { parseJsonBody } from './json';
import { ingestMetrics, type IngestMetrics } from './metrics';
import type { Publisher } from './publisher';
import { registerWriteKeyLimit } from './rate-limit';
import { registerEventRoutes } from './routes/events';
import { registerIdentifyRoute } from './routes/identify';
import { registerSegmentRoutes } from './routes/segment';
import { ingestSchemas } from './schemas';
import { createSegmentCounters } from './segment-counters';

declare module 'fastify' {
  interface FastifyRequest {
    /** The source named by the request's write key. */
    source: string;
  }
  interface FastifyInstance {
    /** Counts accepted and rejected items and times Kafka sends (metrics.ts). */
    ingestMetrics?: IngestMetrics;
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

/** Body limit after decompression (docs/events.md §3.3). */
export const BODY_LIMIT = 512 * 1024;

/** Builds the ingest app without listening; main.ts listens, tests use `inject`. */
export async function buildApp(config: IngestConfig, deps: IngestDeps): Promise<FastifyInstance> {
  const retryAfter = String(Math.max(1, Math.ceil(config.KAFKA_BREAKER_MS / 1000)));
  const app = createHttp(
    deps.log,
    {
      prefix: 'ING',
      classify: (err) =>
        err instanceof AppError && err.code === IngestErrors.KAFKA_UNAVAILABLE
          ? new HttpError(503, err.code, err.message, undefined, { 'Retry-After': retryAfter })
          : undefined,
    },
    { bodyLimit: BODY_LIMIT, requestTimeoutMs: config.REQUEST_TIMEOUT_MS },
  );
  app.decorateRequest('source', '');
  app.decorate('ingestMetrics', ingestMetrics(deps.metrics, deps.publisher));

  await app.register(openApiPlugin, {
    title: 'pstream ingest',
    version: '0.1.0',
    description:
      'Tracking API (docs/events.md §3): native events and Segment-compatible calls in, Kafka out. A 202 means every accepted item is on Kafka with acks=all. ' +
      'Bodies are JSON (gzip or deflate Content-Encoding accepted), at most 512 KB after decompression; an event at most 32 KB. ' +
      'Every error answers `{ "error": { "code", "message", "details"? } }` with an `ING_` code; every answer carries `X-Request-Id`.',
    servers: [{ url: `http://127.0.0.1:${config.INGEST_PORT}`, description: 'a local instance (pnpm start)' }],
    tags: [
      { name: 'native', description: 'The native envelope of docs/events.md §3.2' },
      { name: 'segment', description: 'Segment/RudderStack SDK payloads, mapped to native events' },
    ],
    securitySchemes: {
      basicAuth: { type: 'http', scheme: 'basic', description: 'write key as the username, empty password (Segment style). Browser SDKs may instead (or also) send it as `writeKey` in the JSON body.' },
      writeKey: { type: 'apiKey', in: 'header', name: 'X-Write-Key', description: 'the write key' },
    },
    schemas: ingestSchemas,
  });

  registerOpsRoutes(app, { checks: deps.checks, metrics: deps.metrics });

  // Browser SDKs (analytics.js) post JSON as text/plain to avoid a CORS preflight; RudderStack's
  // node SDK posts its gzipped JSON as application/x-www-form-urlencoded (axios' default for a
  // Buffer), as does `curl -d`. Every one of them is read as JSON.
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser(['application/json', 'text/plain', 'application/x-www-form-urlencoded'], { parseAs: 'string' }, parseJsonBody);
  app.addHook('preParsing', decompressBody);

  const sourceOf = createWriteKeyCheck(config.WRITE_KEYS);
  const origins = createOriginPolicy(config.CORS_ORIGINS, config.CORS_ORIGINS_BY_KEY);
  const rateLimit = await registerWriteKeyLimit(app, {
    redis: deps.redis,
    prefix: config.REDIS_PREFIX,
    ratePerSec: config.RATE_LIMIT_PER_SEC,
    burst: config.RATE_LIMIT_BURST,
    log: deps.log,
  });
  const refuse = (reply: FastifyReply, status: 401 | 403 | 429, code: IngestErrorCode, message: string) => sendError(reply, status, code, message);
  const notAllowed = (reply: FastifyReply, origin: string) =>
    refuse(reply, 403, IngestErrors.ORIGIN_NOT_ALLOWED, `origin ${origin} is not allowed; list it in CORS_ORIGINS or CORS_ORIGINS_BY_KEY`);

  /** The write key's source, its origin and its rate, checked; undefined when the request may go on. */
  const admit = async (request: FastifyRequest, reply: FastifyReply, key: string | undefined, origin: string | undefined) => {
    const source = sourceOf(key);
    if (source === undefined) {
      return refuse(reply, 401, IngestErrors.UNAUTHORIZED, 'unknown or missing write key (send it as the Basic auth username, as X-Write-Key, or as writeKey in the body)');
    }
    if (origin !== undefined && !origins.forKey(key!, origin)) return notAllowed(reply, origin);
    const take = await rateLimit(request, key!);
    if (!take.ok) {
      reply.header('Retry-After', String(take.retryAfterSec));
      return refuse(reply, 429, IngestErrors.RATE_LIMITED, `write key past ${config.RATE_LIMIT_BURST} requests per ${config.RATE_LIMIT_BURST / config.RATE_LIMIT_PER_SEC} s; retry after ${take.retryAfterSec} s`);
    }
    request.source = source;
    return undefined;
  };

  // CORS preflights carry no write key: answered here, before any auth (cors.ts).
  // (`hide` keeps it out of /openapi.json; read by @fastify/swagger, which @pstream/http registers.)
  app.options('/v1/*', { schema: { hide: true } } as RouteShorthandOptions, async (request, reply) => {
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

  const segment = { publisher: deps.publisher, counters: createSegmentCounters(deps.metrics) };
  registerEventRoutes(app, { publisher: deps.publisher });
  registerIdentifyRoute(app, segment);
  registerSegmentRoutes(app, segment);
  return app;
}
