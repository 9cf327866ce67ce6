import { sendError } from '@pstream/http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createWriteKeyCheck, presentedWriteKey, sameKey } from './auth';
import type { IngestConfig } from './config';
import { allowOrigin, crossOrigin, type OriginPolicy } from './cors';
import { IngestErrors, type IngestErrorCode } from './errors';
import type { Take } from './rate-limit';

export type WriteGateOptions = {
  config: Pick<IngestConfig, 'WRITE_KEYS' | 'RATE_LIMIT_BURST' | 'RATE_LIMIT_PER_SEC'>;
  origins: OriginPolicy;
  /** The per-write-key limit (rate-limit.ts). */
  rateLimit: (request: FastifyRequest, key: string) => Promise<Take>;
  /** Registers the write routes; each one is behind the gate. */
  routes: (scope: FastifyInstance) => void;
};

/** A 403 for a browser origin no write key (or not this one) allows. */
export const refuseOrigin = (reply: FastifyReply, origin: string) =>
  refuse(
    reply,
    403,
    IngestErrors.ORIGIN_NOT_ALLOWED,
    `origin ${origin} is not allowed; list it in CORS_ORIGINS or CORS_ORIGINS_BY_KEY`,
  );

const refuse = (reply: FastifyReply, status: 401 | 403 | 429, code: IngestErrorCode, message: string) =>
  sendError(reply, status, code, message);

/**
 * The write key, CORS and rate-limit gate, as an encapsulated Fastify plugin: its hooks belong to
 * the routes registered inside it (`options.routes`) and to no others. The gate is attached to the
 * matched route, never chosen by looking at the URL, so no spelling of a path (percent-encoded
 * letters, a query string, …) can reach a write handler without passing it; a path that matches
 * no route reaches no handler at all.
 *
 * A write key in a header is checked before the body is read (cheap refusals). Without one, the
 * key may be `writeKey` in the JSON body (analytics.js), checked once the body is parsed.
 */
export async function writeGate(scope: FastifyInstance, options: WriteGateOptions): Promise<void> {
  const { config, origins, rateLimit } = options;
  const sourceOf = createWriteKeyCheck(config.WRITE_KEYS);

  /** The write key's source, its origin and its rate, checked; undefined when the request may go on. */
  const admit = async (
    request: FastifyRequest,
    reply: FastifyReply,
    key: string | undefined,
    origin: string | undefined,
  ) => {
    const source = sourceOf(key);
    if (source === undefined) {
      return refuse(
        reply,
        401,
        IngestErrors.UNAUTHORIZED,
        'unknown or missing write key (send it as the Basic auth username, as X-Write-Key, or as writeKey in the body)',
      );
    }
    if (origin !== undefined && !origins.forKey(key!, origin)) return refuseOrigin(reply, origin);
    const take = await rateLimit(request, key!);
    if (!take.ok) {
      reply.header('Retry-After', String(take.retryAfterSec));
      return refuse(
        reply,
        429,
        IngestErrors.RATE_LIMITED,
        `write key past ${config.RATE_LIMIT_BURST} requests per ${config.RATE_LIMIT_BURST / config.RATE_LIMIT_PER_SEC} s; retry after ${take.retryAfterSec} s`,
      );
    }
    request.source = source;
    return undefined;
  };

  scope.addHook('onRequest', async (request, reply) => {
    const origin = crossOrigin(request);
    if (origin !== undefined) {
      if (!origins.anyKey(origin)) return refuseOrigin(reply, origin);
      allowOrigin(reply, origin);
    }
    const key = presentedWriteKey(request);
    return key === undefined ? undefined : admit(request, reply, key, origin);
  });
  scope.addHook('preHandler', async (request, reply) => {
    const body = request.body as { writeKey?: unknown } | undefined;
    const inBody =
      typeof body === 'object' && body !== null && !Array.isArray(body) && 'writeKey' in body
        ? body.writeKey
        : undefined;
    // Taken out of the body at once, so no handler, log line or error message can carry it.
    if (inBody !== undefined) delete body!.writeKey;
    if (request.source === '')
      return admit(
        request,
        reply,
        typeof inBody === 'string' && inBody !== '' ? inBody : undefined,
        crossOrigin(request),
      );
    if (inBody !== undefined && !sameKey(typeof inBody === 'string' ? inBody : '', presentedWriteKey(request)!)) {
      return refuse(
        reply,
        401,
        IngestErrors.UNAUTHORIZED,
        'the writeKey in the body is not the write key the request was sent with',
      );
    }
    return undefined;
  });
  options.routes(scope);
}
