import { createHash } from 'node:crypto';
import rateLimit from '@fastify/rate-limit';
import { createRedis, type Logger, type Redis } from '@pstream/platform';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { presentedWriteKey } from './auth';
import type { IngestConfig } from './config';

/** The outcome of asking for a token: go ahead, or wait `retryAfterSec` (≥ 1, for Retry-After). */
export type Take = { ok: true } | { ok: false; retryAfterSec: number };

export type TokenBuckets = { take(key: string): Take };

/**
 * A token bucket per key, in this process: `ratePerSec` tokens flow in, at most `burst` are kept,
 * a request takes one. Pure apart from the injected clock. The fallback of the deployment-wide
 * limit below while Redis is away. Keys are the configured write keys only (requests with
 * unknown keys are refused before they get here), so the map cannot grow without bound.
 */
export function createTokenBuckets(options: { ratePerSec: number; burst: number; now?: () => number }): TokenBuckets {
  const now = options.now ?? Date.now;
  const buckets = new Map<string, { tokens: number; at: number }>();
  return {
    take(key) {
      const t = now();
      const bucket = buckets.get(key) ?? { tokens: options.burst, at: t };
      bucket.tokens = Math.min(options.burst, bucket.tokens + ((t - bucket.at) / 1000) * options.ratePerSec);
      bucket.at = t;
      buckets.set(key, bucket);
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        return { ok: true };
      }
      return { ok: false, retryAfterSec: Math.max(1, Math.ceil((1 - bucket.tokens) / options.ratePerSec)) };
    },
  };
}

/** The write key each request is being limited under, for the limiter's key generator. */
const limitedKeys = new WeakMap<FastifyRequest, string>();

/**
 * The per-write-key limit for the whole deployment: one counter per key in Redis, shared by every
 * ingest instance (`@fastify/rate-limit` with its Redis store: an atomic INCR + PEXPIRE script).
 * It counts fixed windows of `burst / ratePerSec` seconds allowing `burst` requests each, so a key
 * averages at most `ratePerSec` and bursts up to `burst` (twice that across a window boundary).
 *
 * When Redis does not answer within its command timeout, the check **fails open to the instance's
 * own token bucket** (split between its worker processes, each of which gets about every
 * `processes`-th connection): ingest keeps accepting events at the per-instance rate rather than refusing
 * everyone. The limit exists to keep one runaway client from crowding out the rest, not to
 * authenticate (write keys do that); refusing all traffic because a side store is down would lose
 * every source's events to protect against one. The outage is logged (at most every 10 s).
 * Without a Redis client (unit tests, the OpenAPI dump) only the bucket applies.
 */
export async function registerWriteKeyLimit(
  app: FastifyInstance,
  options: {
    redis?: Redis;
    prefix: string;
    ratePerSec: number;
    burst: number;
    /** Processes serving this instance (INGEST_WORKERS): each keeps 1/processes of the fallback bucket. */
    processes?: number;
    log: Logger;
  },
): Promise<(request: FastifyRequest, key: string) => Promise<Take>> {
  const share = options.processes ?? 1;
  const fallback = createTokenBuckets({
    ratePerSec: options.ratePerSec / share,
    burst: Math.max(1, Math.floor(options.burst / share)),
  });
  const redis = options.redis;
  if (redis === undefined) return async (_request, key) => fallback.take(key);
  await app.register(rateLimit, {
    global: false,
    redis,
    nameSpace: `${options.prefix}:ratelimit:`,
    max: options.burst,
    timeWindow: Math.ceil((options.burst / options.ratePerSec) * 1000),
    // Redis keys name a digest of the write key, never the key itself. The key is the one the
    // request was admitted with (a header, or `writeKey` in the body for analytics.js).
    keyGenerator: (request) =>
      createHash('sha256')
        .update(limitedKeys.get(request) ?? presentedWriteKey(request) ?? '')
        .digest('base64url')
        .slice(0, 22),
  });
  const limit = app.createRateLimit();
  let lastWarned = 0;
  return async (request, key) => {
    limitedKeys.set(request, key);
    try {
      const r = await limit(request);
      if (r.isAllowed || !r.isExceeded) return { ok: true };
      return { ok: false, retryAfterSec: Math.max(1, r.ttlInSeconds) };
    } catch (err) {
      if (Date.now() - lastWarned > 10_000) {
        lastWarned = Date.now();
        options.log.warn({ err }, 'rate limit store (Redis) unavailable; limiting per instance until it answers');
      }
      return fallback.take(key);
    }
  };
}

/**
 * The rate limit's Redis client fails fast: every command gives up after
 * RATE_LIMIT_REDIS_TIMEOUT_MS, and commands queued while disconnected are failed at the first
 * failed reconnect (no retries), so a Redis outage costs a request at most that timeout before the
 * per-instance fallback applies (services/ingest/README.md, "rate limit"). The queue itself stays:
 * checks made while the client is still connecting at start-up wait for it rather than fall back.
 */
export function createRateLimitRedis(
  config: Pick<IngestConfig, 'REDIS_URL' | 'REDIS_CLUSTER_NODES' | 'RATE_LIMIT_REDIS_TIMEOUT_MS'>,
): Redis {
  const redis = createRedis(config, 'ingest-rate-limit', {
    maxRetriesPerRequest: 0,
    commandTimeout: config.RATE_LIMIT_REDIS_TIMEOUT_MS,
    enableAutoPipelining: false,
  });
  // Connection errors surface through the checks that fail (logged there, throttled); without a
  // listener ioredis would print every reconnect attempt.
  redis.on('error', () => undefined);
  return redis;
}
