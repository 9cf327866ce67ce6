import calculateSlot from 'cluster-key-slot';
import { Cluster, Redis as SingleRedis, type ChainableCommander, type RedisOptions } from 'ioredis';

/** A Redis client: one server, or a Redis Cluster. Every service and store takes this type. */
export type Redis = SingleRedis | Cluster;

/** Where Redis is: `REDIS_CLUSTER_NODES` (non-empty) selects a Cluster, else `REDIS_URL`. */
export type RedisConnection = { REDIS_URL: string; REDIS_CLUSTER_NODES?: readonly string[] };

/**
 * The one Redis client factory of every service and store. Commands wait while the connection
 * is down (offline queue) so a short outage slows us rather than failing requests; the caller's
 * own timeouts bound that wait.
 *
 * With `REDIS_CLUSTER_NODES` it returns an ioredis `Cluster` seeded from those `host:port`
 * nodes (credentials and database come from `REDIS_URL`; a Cluster has only database 0). A
 * command that meets a failing-over master is retried while the replica takes over
 * (`retryDelayOnFailover` × `maxRedirections` ≈ 15 s), so a master's loss delays writes instead
 * of failing them. `options` override the defaults of each connection (a client that must fail
 * fast instead).
 */
export function createRedis(conn: RedisConnection, name: string, options: RedisOptions = {}): Redis {
  const nodes = conn.REDIS_CLUSTER_NODES ?? [];
  if (nodes.length === 0)
    return new SingleRedis(conn.REDIS_URL, {
      connectionName: name,
      maxRetriesPerRequest: 20,
      enableAutoPipelining: true,
      ...options,
    });
  const url = new URL(conn.REDIS_URL);
  return new Cluster(
    nodes.map((node) => {
      const { host, port } = parseNode(node);
      return { host, port };
    }),
    {
      // Off on a Cluster: ioredis groups auto-pipelined commands by the slot map of the moment, and
      // after a failover a stale group failed for good ("All the keys in a pipeline command should
      // belong to the same slot"), so the scorers stopped writing. Our own batches go through
      // pipelineBySlot, which groups by node and re-reads the map after a failed reply.
      enableAutoPipelining: options.enableAutoPipelining ?? false,
      maxRedirections: 50,
      retryDelayOnFailover: 300,
      retryDelayOnClusterDown: 300,
      retryDelayOnTryAgain: 300,
      slotsRefreshTimeout: 2000,
      // Also re-read the slot map every 5 s: a failover seen by no command of ours is picked up.
      slotsRefreshInterval: 5000,
      redisOptions: {
        connectionName: name,
        maxRetriesPerRequest: 20,
        username: url.username ? decodeURIComponent(url.username) : undefined,
        password: url.password ? decodeURIComponent(url.password) : undefined,
        tls: url.protocol === 'rediss:' ? {} : undefined,
        ...options,
      },
    },
  );
}

/** `host:port` of one cluster node; throws naming the bad entry. */
export function parseNode(node: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(node.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) throw new Error(`REDIS_CLUSTER_NODES: '${node}' is not host:port`);
  return { host: m[1]!, port };
}

/** The Cluster hash slot of a key (honours `{hash tags}`). */
export function slotOf(key: string): number {
  return calculateSlot(key);
}

export function isCluster(redis: Redis): redis is Cluster {
  return redis instanceof Cluster;
}

/**
 * How many replicas must have a pipeline's writes before it resolves (Redis `WAIT`; 0: none).
 * Redis replicates asynchronously: without it a master that dies right after answering can take
 * acknowledged writes with it, and a consumer that committed its offset would not redeliver them.
 */
export type Durability = { replicas?: number; timeoutMs?: number };

/**
 * Runs one command per item in as few pipelines as the deployment allows and returns the
 * replies in the items' order. On one server that is one pipeline (one round trip). A Cluster
 * pipeline must stay on one node, so there the items are grouped by the node that owns their
 * key's slot, and the groups run concurrently; items of one slot keep their relative order (a
 * person's events are applied in order). `keyOf` names the item's key that decides its slot.
 * With `durability.replicas`, each pipeline ends with `WAIT`, and fewer acknowledging replicas
 * than asked is an error (the caller retries; its writes are idempotent).
 */
export async function pipelineBySlot<T>(
  redis: Redis,
  items: readonly T[],
  keyOf: (item: T) => string,
  add: (pipeline: ChainableCommander, item: T) => void,
  durability: Durability = {},
): Promise<[Error | null, unknown][]> {
  const replicas = durability.replicas ?? 0;
  if (items.length === 0) return [];
  const groups = new Map<string, number[]>();
  if (!isCluster(redis))
    groups.set(
      '',
      items.map((_, i) => i),
    );
  else {
    for (let i = 0; i < items.length; i++) {
      const slot = slotOf(keyOf(items[i]!));
      const owner = redis.slots[slot]?.join(';') ?? `slot:${slot}`;
      const group = groups.get(owner);
      if (group) group.push(i);
      else groups.set(owner, [i]);
    }
  }
  const out: [Error | null, unknown][] = new Array(items.length);
  await Promise.all(
    [...groups.values()].map(async (indexes) => {
      const pipeline = redis.pipeline();
      for (const i of indexes) add(pipeline, items[i]!);
      if (replicas > 0) pipeline.call('WAIT', replicas, durability.timeoutMs ?? 5000);
      const replies = (await pipeline.exec()) ?? [];
      // ioredis follows a MOVED only for a pipeline whose commands all failed alike, which ours
      // (many slots, WAIT) never do: learn the new owners now, so the caller's retry goes there.
      if (isCluster(redis) && replies.some(([err]) => err))
        await new Promise<void>((resolve) => redis.refreshSlotsCache(() => resolve()));
      if (replicas > 0) {
        const [err, acked] = replies[indexes.length] ?? [new Error('no reply to WAIT'), 0];
        if (err) throw err;
        if (Number(acked) < replicas)
          throw new Error(
            `Redis: ${String(acked)} of ${replicas} replicas acknowledged the writes within ${durability.timeoutMs ?? 5000} ms`,
          );
      }
      indexes.forEach((i, j) => {
        out[i] = replies[j] ?? [new Error('no reply'), undefined];
      });
    }),
  );
  return out;
}

/**
 * Every key matching `pattern`, in batches: SCAN on one server, SCAN on every master of a
 * Cluster (each holds its own slots).
 */
export async function* scanKeys(redis: Redis, pattern: string, count = 1000): AsyncGenerator<string[]> {
  if (isCluster(redis) && redis.status !== 'ready') await redis.ping(); // the masters are known once it is ready
  const servers = isCluster(redis) ? redis.nodes('master') : [redis];
  for (const server of servers) {
    for await (const batch of server.scanStream({ match: pattern, count }) as AsyncIterable<string[]>) {
      if (batch.length > 0) yield batch;
    }
  }
}

/** Closes a client once; a second call is a no-op. */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === 'end') return;
  await redis.quit().catch(() => redis.disconnect());
}
