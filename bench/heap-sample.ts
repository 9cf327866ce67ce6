import { Session } from 'node:inspector/promises';

type Node = { callFrame: { functionName: string; url: string }; selfSize: number; children: Node[] };

/**
 * Bytes allocated while `f` runs, by V8's sampling heap profiler with collected objects kept (so
 * short-lived garbage counts, as scavenges see it): the total and the bytes under each frame whose
 * function name is in `names` (inclusive). An estimate (one sample per `interval` bytes on average).
 */
export async function sampledAllocation(
  f: () => Promise<void>,
  names: readonly string[] = [],
  interval = 64,
): Promise<{ total: number; by: Record<string, number>; top: [string, number][] }> {
  const session = new Session();
  session.connect();
  try {
    await session.post('HeapProfiler.startSampling', {
      samplingInterval: interval,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
    await f();
    const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: Node } };
    const by: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
    let total = 0;
    const leaves = new Map<string, number>();
    const walk = (node: Node, under: Set<string>): void => {
      total += node.selfSize;
      const leaf = `${node.callFrame.functionName || '(anonymous)'} ${node.callFrame.url.split('/').slice(-2).join('/')}`;
      leaves.set(leaf, (leaves.get(leaf) ?? 0) + node.selfSize);
      for (const n of under) by[n]! += node.selfSize;
      const name = node.callFrame.functionName;
      const next = names.includes(name) && !under.has(name) ? new Set([...under, name]) : under;
      for (const c of node.children) walk(c, next);
    };
    walk(profile.head, new Set());
    const top = [...leaves].sort((a, b) => b[1] - a[1]).slice(0, 12);
    return { total, by, top };
  } finally {
    session.disconnect();
  }
}
