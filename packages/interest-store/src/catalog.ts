import { pipelineBySlot, type Redis } from '@pstream/platform';
import type { Keys } from './keys';

/**
 * The catalog (§5.6): target → tags, so events that name only a target get the target's tags.
 * One small string key per target (JSON array), hash-tagged by the target for Redis Cluster.
 */
export async function writeCatalog(redis: Redis, k: Keys, targetKey: string, tags: string[]): Promise<void> {
  await redis.set(k.catalog(targetKey), JSON.stringify([...new Set(tags)]));
}

/** The catalog tags of each target that has an entry, in one round trip (one per node on a Cluster). */
export async function lookupCatalog(redis: Redis, k: Keys, targetKeys: string[]): Promise<Map<string, string[]>> {
  const unique = [...new Set(targetKeys)];
  const found = new Map<string, string[]>();
  if (unique.length === 0) return found;
  const replies = await pipelineBySlot(
    redis,
    unique,
    (t) => k.catalog(t),
    (pipeline, t) => pipeline.get(k.catalog(t)),
  );
  unique.forEach((t, i) => {
    const [err, value] = replies[i] ?? [];
    if (err) throw err;
    if (typeof value === 'string') found.set(t, JSON.parse(value) as string[]);
  });
  return found;
}
