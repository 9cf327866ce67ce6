import { createHttp, HttpError, openApiPlugin } from '@pstream/http';
import {
  AppError,
  registerOpsRoutes,
  type InstanceView,
  type Logger,
  type ReadinessCheck,
  type Redis,
  type Registry,
} from '@pstream/platform';
import type { FastifyInstance, RouteShorthandOptions } from 'fastify';
import type { IngestConfig } from './config';
import { answerPreflight, createOriginPolicy, crossOrigin } from './cors';
import { decompressBody } from './decompress';
import { IngestErrors } from './errors';
import { refuseOrigin, writeGate } from './gate';
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
  /** A worker of several (INGEST_WORKERS > 1): /metrics and /readyz answer for all of them (src/workers.ts). */
  instance?: InstanceView;
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
        !(err instanceof AppError)
          ? undefined
          : err.code === IngestErrors.KAFKA_UNAVAILABLE
            ? new HttpError(503, err.code, err.message, undefined, { 'Retry-After': retryAfter })
            : err.code === IngestErrors.TOO_LARGE
              ? new HttpError(413, err.code, err.message)
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
      basicAuth: {
        type: 'http',
        scheme: 'basic',
        description:
          'write key as the username, empty password (Segment style). Browser SDKs may instead (or also) send it as `writeKey` in the JSON body.',
      },
      writeKey: { type: 'apiKey', in: 'header', name: 'X-Write-Key', description: 'the write key' },
    },
    schemas: ingestSchemas,
  });

  registerOpsRoutes(app, { checks: deps.checks, metrics: deps.metrics, instance: deps.instance });

  // Browser SDKs (analytics.js) post JSON as text/plain to avoid a CORS preflight; RudderStack's
  // node SDK posts its gzipped JSON as application/x-www-form-urlencoded (axios' default for a
  // Buffer), as does `curl -d`. Every one of them is read as JSON.
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser(
    ['application/json', 'text/plain', 'application/x-www-form-urlencoded'],
    { parseAs: 'string' },
    parseJsonBody,
  );
  app.addHook('preParsing', decompressBody);

  const origins = createOriginPolicy(config.CORS_ORIGINS, config.CORS_ORIGINS_BY_KEY);
  const rateLimit = await registerWriteKeyLimit(app, {
    redis: deps.redis,
    prefix: config.REDIS_PREFIX,
    ratePerSec: config.RATE_LIMIT_PER_SEC,
    burst: config.RATE_LIMIT_BURST,
    // The fallback bucket lives in each process: the workers of one instance split it.
    processes: config.INGEST_WORKERS,
    log: deps.log,
  });

  // CORS preflights carry no write key: answered here, outside the gate (cors.ts).
  // (`hide` keeps it out of /openapi.json; read by @fastify/swagger, which @pstream/http registers.)
  app.options('/v1/*', { schema: { hide: true } } as RouteShorthandOptions, async (request, reply) => {
    const origin = crossOrigin(request);
    if (origin === undefined) return reply.code(204).send();
    return origins.anyKey(origin) ? answerPreflight(request, reply, origin) : refuseOrigin(reply, origin);
  });

  // Every write route is registered inside the gate, whose hooks belong to those routes (gate.ts).
  const segment = { publisher: deps.publisher, counters: createSegmentCounters(deps.metrics) };
  await app.register(writeGate, {
    config,
    origins,
    rateLimit,
    routes(scope) {
      registerEventRoutes(scope, { publisher: deps.publisher });
      registerIdentifyRoute(scope, segment);
      registerSegmentRoutes(scope, segment);
    },
  });
  return app;
}
