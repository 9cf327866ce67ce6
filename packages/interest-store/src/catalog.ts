import type { Redis } from 'ioredis';
import type { Keys } from './keys';

/**
 * The catalog (§5.6): target → tags, so events that name only a target get the target's tags.
 * One small string key per target (JSON array), hash-tagged by the target for Redis Cluster.
 */
export async function writeCatalog(redis: Redis, k: Keys, targetKey: string, tags: string[]): Promise<void> {
  await redis.set(k.catalog(targetKey), JSON.stringify([...new Set(tags)]));
}

/** The catalog tags of each target that has an entry, in one round trip. */
export async function lookupCatalog(redis: Redis, k: Keys, targetKeys: string[]): Promise<Map<string, string[]>> {
  const unique = [...new Set(targetKeys)];
  const found = new Map<string, string[]>();
  if (unique.length === 0) return found;
  const pipeline = redis.pipeline();
  for (const t of unique) pipeline.get(k.catalog(t));
  const replies = (await pipeline.exec()) ?? [];
  unique.forEach((t, i) => {
    const [err, value] = replies[i] ?? [];
    if (err) throw err;
    if (typeof value === 'string') found.set(t, JSON.parse(value) as string[]);
  });
  return found;
}
