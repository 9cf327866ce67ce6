import { Redis } from 'ioredis';

export type { Redis } from 'ioredis';

/**
 * A Redis client. Commands wait while the connection is down (offline queue) so a short outage
 * slows us rather than failing requests; the caller's own timeouts bound that wait.
 */
export function createRedis(url: string, name: string): Redis {
  return new Redis(url, { connectionName: name, maxRetriesPerRequest: 20, enableAutoPipelining: true });
}

/** Closes a client once; a second call is a no-op. */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === 'end') return;
  await redis.quit().catch(() => redis.disconnect());
}
