import { createHttp, HttpError, openApiPlugin, sendError } from '@pstream/http';
import { AppError, registerOpsRoutes, type Logger, type ReadinessCheck, type Registry } from '@pstream/platform';
import type { FastifyInstance } from 'fastify';
import { createWriteKeyCheck, presentedWriteKey } from './auth';
import type { IngestConfig } from './config';
import { decompressBody } from './decompress';
import { IngestErrors } from './errors';
import { parseJsonBody } from './json';
import type { Publisher } from './publisher';
import { createTokenBuckets } from './rate-limit';
import { registerEventRoutes } from './routes/events';
import { registerIdentifyRoute } from './routes/identify';
import { registerSegmentRoutes } from './routes/segment';
import { ingestSchemas } from './schemas';

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

  await app.register(openApiPlugin, {
    title: 'pstream ingest',
    version: '0.1.0',
    description:
      'Tracking API (SPEC §3): native events and Segment-compatible calls in, Kafka out. A 202 means every accepted item is on Kafka with acks=all. ' +
      'Bodies are JSON (gzip or deflate Content-Encoding accepted), at most 512 KB after decompression; an event at most 32 KB. ' +
      'Every error answers `{ "error": { "code", "message", "details"? } }` with an `ING_` code; every answer carries `X-Request-Id`.',
    servers: [{ url: `http://127.0.0.1:${config.INGEST_PORT}`, description: 'a local instance (pnpm start)' }],
    tags: [
      { name: 'native', description: 'The native envelope of SPEC §3.2' },
      { name: 'segment', description: 'Segment/RudderStack SDK payloads, mapped to native events' },
    ],
    securitySchemes: {
      basicAuth: { type: 'http', scheme: 'basic', description: 'write key as the username, empty password (Segment style)' },
      writeKey: { type: 'apiKey', in: 'header', name: 'X-Write-Key', description: 'the write key' },
    },
    schemas: ingestSchemas,
  });

  registerOpsRoutes(app, { checks: deps.checks, metrics: deps.metrics });

  // Browser SDKs (analytics.js) post JSON as text/plain to avoid a CORS preflight.
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser(['application/json', 'text/plain'], { parseAs: 'string' }, parseJsonBody);
  app.addHook('preParsing', decompressBody);

  const sourceOf = createWriteKeyCheck(config.WRITE_KEYS);
  const buckets = createTokenBuckets({ ratePerSec: config.RATE_LIMIT_PER_SEC, burst: config.RATE_LIMIT_BURST });
  app.addHook('onRequest', async (request, reply) => {
    if (!request.url.startsWith('/v1/')) return;
    const key = presentedWriteKey(request);
    const source = sourceOf(key);
    if (source === undefined) return sendError(reply, 401, IngestErrors.UNAUTHORIZED, 'unknown or missing write key');
    const take = buckets.take(key!);
    if (!take.ok) {
      reply.header('Retry-After', String(take.retryAfterSec));
      return sendError(reply, 429, IngestErrors.RATE_LIMITED, `write key past ${config.RATE_LIMIT_PER_SEC} requests/s; retry after ${take.retryAfterSec} s`);
    }
    request.source = source;
  });

  registerEventRoutes(app, { publisher: deps.publisher });
  registerIdentifyRoute(app, { publisher: deps.publisher });
  registerSegmentRoutes(app, { publisher: deps.publisher });
  return app;
}
