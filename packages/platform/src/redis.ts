import { Redis, type RedisOptions } from 'ioredis';

export type { Redis } from 'ioredis';

/**
 * A Redis client. Commands wait while the connection is down (offline queue) so a short outage
 * slows us rather than failing requests; the caller's own timeouts bound that wait. `options`
 * override that for a client that must fail fast instead (ingest's rate limit).
 */
export function createRedis(url: string, name: string, options: RedisOptions = {}): Redis {
  return new Redis(url, { connectionName: name, maxRetriesPerRequest: 20, enableAutoPipelining: true, ...options });
}

/** Closes a client once; a second call is a no-op. */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === 'end') return;
  await redis.quit().catch(() => redis.disconnect());
}
