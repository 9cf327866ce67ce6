import { z } from 'zod';
import { commonEnv, createRedis, isCluster, parseEnv, parseNode, slotOf } from '../src';

describe('Redis client selection', () => {
  const schema = z.object({ REDIS_URL: commonEnv.REDIS_URL, REDIS_CLUSTER_NODES: commonEnv.REDIS_CLUSTER_NODES });

  it('reads REDIS_CLUSTER_NODES as host:port entries, empty by default, and names a bad one', () => {
    expect(parseEnv(schema, {}).REDIS_CLUSTER_NODES).toEqual([]);
    expect(
      parseEnv(schema, { REDIS_CLUSTER_NODES: '10.0.0.1:7000, redis-2:7001,[::1]:7002' }).REDIS_CLUSTER_NODES,
    ).toEqual(['10.0.0.1:7000', 'redis-2:7001', '[::1]:7002']);
    expect(() => parseEnv(schema, { REDIS_CLUSTER_NODES: '10.0.0.1' })).toThrow(/REDIS_CLUSTER_NODES/);
    expect(() => parseEnv(schema, { REDIS_CLUSTER_NODES: 'a:1,b' })).toThrow(/REDIS_CLUSTER_NODES/);
    expect(() => parseNode('host:99999')).toThrow(/'host:99999' is not host:port/);
    expect(parseNode('[::1]:7002')).toEqual({ host: '::1', port: 7002 });
  });

  it('makes a Cluster client only when seed nodes are given', () => {
    const single = createRedis({ REDIS_URL: 'redis://127.0.0.1:1/0', REDIS_CLUSTER_NODES: [] }, 't');
    const cluster = createRedis({ REDIS_URL: 'redis://127.0.0.1:1/0', REDIS_CLUSTER_NODES: ['127.0.0.1:1'] }, 't');
    try {
      expect(isCluster(single)).toBe(false);
      expect(isCluster(cluster)).toBe(true);
    } finally {
      single.disconnect();
      cluster.disconnect();
    }
  });

  it('puts every key of one person in one slot (the hash tag), and people apart', () => {
    const p = (id: string, part: string) => `ps:p:{${id}}:${part}`;
    expect(new Set(['int', 'seen', 'vis', 'fol', 'alias', 'merged'].map((part) => slotOf(p('u-1', part))))).toEqual(
      new Set([slotOf('u-1')]),
    );
    expect(slotOf(p('u-1', 'int'))).not.toBe(slotOf(p('u-2', 'int')));
  });
});
