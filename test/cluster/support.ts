/**
 * What the cluster test drives: the multi-node stack of `pnpm infra:up --cluster`, services run
 * as real processes (so a SIGKILL is a real crash), and the faults it injects.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Admin, ITopicConfig } from 'kafkajs';
import { Redis as SingleRedis } from 'ioredis';
import { waitFor } from '@pstream/testkit';

export const ROOT = path.resolve(__dirname, '../..');
export const CLUSTER_KAFKA = '127.0.0.1:19192,127.0.0.1:19193,127.0.0.1:19194';
export const CLUSTER_REDIS_PORTS = [7101, 7102, 7103, 7104, 7105, 7106];
export const CLUSTER_REDIS_NODES = CLUSTER_REDIS_PORTS.map((p) => `127.0.0.1:${p}`).join(',');

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** Each service's log lines go to <data dir>/cluster-test-logs/<name>.log (appended), for a failed run. */
function logFile(name: string): number {
  const dir = path.join(process.env.PSTREAM_DATA_DIR ?? path.join(ROOT, '.data'), 'cluster-test-logs');
  mkdirSync(dir, { recursive: true });
  return openSync(path.join(dir, `${name}.log`), 'a');
}

export type Service = { name: string; child: ChildProcess; port: number; exited: Promise<unknown> };

const PORT_VAR = { ingest: 'INGEST', scorer: 'SCORER', segmenter: 'SEGMENTER' } as const;

/**
 * Starts a service as its own process: node with tsx as a loader, so a SIGKILL hits the service
 * itself (the tsx CLI would run it as a grandchild). Resolves once /readyz answers 200.
 */
export async function startService(
  kind: keyof typeof PORT_VAR,
  name: string,
  env: NodeJS.ProcessEnv,
): Promise<Service> {
  const s = await spawnService(kind, name, env);
  await waitReady(s);
  return s;
}

/** Starts a service's process without waiting for it to be ready. */
export async function spawnService(
  kind: keyof typeof PORT_VAR,
  name: string,
  env: NodeJS.ProcessEnv,
): Promise<Service> {
  const port = await freePort();
  const v = PORT_VAR[kind];
  const out = logFile(name);
  const child = spawn(process.execPath, ['--import', 'tsx', `services/${kind}/src/main.ts`], {
    cwd: ROOT,
    env: {
      ...env,
      [`${v}_PORT`]: String(port),
      [`${v}_HOST`]: '127.0.0.1',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
      LOG_FORMAT: 'json',
    },
    stdio: ['ignore', out, out],
  });
  closeSync(out); // the child has its own copy
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return { name, child, port, exited };
}

export async function waitReady({ name, child, port }: Service): Promise<void> {
  await waitFor(
    `${name} to be ready on :${port}`,
    async () => {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`${name} exited (${child.exitCode ?? child.signalCode})`);
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      return res.status === 200 ? true : undefined;
    },
    120_000,
    250,
  );
}

export async function stopService(s: Service): Promise<void> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  s.child.kill('SIGTERM');
  const done = await Promise.race([
    s.exited.then(() => true),
    new Promise((r) => setTimeout(() => r(false), 20_000).unref()),
  ]);
  if (!done) {
    s.child.kill('SIGKILL');
    await s.exited;
  }
}

export async function sigkill(s: Service): Promise<void> {
  s.child.kill('SIGKILL');
  await s.exited;
}

/**
 * Creates topics on the cluster and waits until every partition has a leader. (kafkajs's own
 * `waitForLeaders` gives up on a busy cluster whose brokers learn of a new topic at different times.)
 */
export async function createTopics(admin: Admin, topics: ITopicConfig[]): Promise<void> {
  await waitFor(
    'the topics to be created',
    async () => {
      await admin.createTopics({ waitForLeaders: false, topics });
      return true;
    },
    60_000,
    500,
  ).catch(async (err: unknown) => {
    const existing = await admin.listTopics();
    if (!topics.every((t) => existing.includes(t.topic))) throw err;
  });
  await waitFor(
    'a leader for every partition',
    async () => {
      const { topics: meta } = await admin.fetchTopicMetadata({ topics: topics.map((t) => t.topic) });
      const want = new Map(topics.map((t) => [t.topic, t.numPartitions]));
      return meta.length === topics.length &&
        meta.every((t) => t.partitions.length === want.get(t.name) && t.partitions.every((p) => p.leader >= 0))
        ? true
        : undefined;
    },
    120_000,
    250,
  );
}

/** The broker (node id) leading the most partitions of `topic`, and how many it leads. */
export async function busiestLeader(admin: Admin, topic: string): Promise<{ nodeId: number; partitions: number }> {
  const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
  const led = new Map<number, number>();
  for (const p of topics[0]!.partitions) led.set(p.leader, (led.get(p.leader) ?? 0) + 1);
  const [nodeId, partitions] = [...led].sort((a, b) => b[1] - a[1])[0]!;
  return { nodeId, partitions };
}

/** SIGKILLs the JVM of a cluster broker (node ids 1-3 live in <data dir>/cluster/kafka/b<id>). */
export function killBroker(nodeId: number): number {
  const data = process.env.PSTREAM_DATA_DIR ?? path.join(ROOT, '.data');
  const pid = Number(readFileSync(path.join(data, `cluster/kafka/b${nodeId}/broker.pid`), 'utf8').trim());
  process.kill(pid, 'SIGKILL');
  return pid;
}

/** A plain connection to the first cluster node that answers (one may be down). */
async function anyNode(): Promise<SingleRedis> {
  for (const port of CLUSTER_REDIS_PORTS) {
    const node = new SingleRedis(port, '127.0.0.1', {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      retryStrategy: () => null,
    });
    try {
      await node.connect();
      await node.ping();
      return node;
    } catch {
      node.disconnect();
    }
  }
  throw new Error('no Redis Cluster node answers');
}

/** The port of the master that owns `key`'s slot, and its pid. */
export async function masterOf(key: string): Promise<{ port: number; pid: number }> {
  const probe = await anyNode();
  try {
    const slot = (await probe.call('CLUSTER', 'KEYSLOT', key)) as number;
    const shards = (await probe.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, string]][];
    const owner = shards.find(([from, to]) => slot >= from && slot <= to);
    if (!owner) throw new Error(`no master owns slot ${slot}`);
    const port = owner[2][1];
    const node = new SingleRedis(port, '127.0.0.1', {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      retryStrategy: () => null,
    });
    let info: string;
    try {
      await node.connect();
      info = await node.info('server');
    } finally {
      node.disconnect();
    }
    return { port, pid: Number(/process_id:(\d+)/.exec(info)![1]) };
  } finally {
    probe.disconnect();
  }
}

/** `pnpm infra:up --cluster`: restarts whatever broker or Redis node is down (idempotent). */
export function infraUpCluster(): void {
  const r = spawnSync('bash', ['scripts/infra.sh', 'up', '--cluster'], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 240_000,
  });
  if (r.status !== 0) throw new Error(`infra.sh up --cluster failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
}
