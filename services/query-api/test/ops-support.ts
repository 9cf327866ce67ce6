import { createMetrics, createPool, createRedis, type Registry } from '@pstream/platform';
import type { FastifyInstance } from 'fastify';
import type { Admin, Producer } from 'kafkajs';
import { type Sandbox, silentLog } from '@pstream/testkit';
import { buildApp } from '../src/app';
import { loadConfig } from '../src/config';
import { LagSampler, type LagSamplerOptions } from '../src/lag/sampler';

/** What the ops tests share: the sandbox's admin and producer, a sampler, and the query API around it. */
export type OpsRig = {
  admin: Admin;
  producer: Producer;
  sampler: LagSampler;
  metrics: Registry;
  app: FastifyInstance;
  close(): Promise<void>;
};

export async function kafkaClients(box: Sandbox): Promise<{ admin: Admin; producer: Producer }> {
  const admin = box.kafka.admin();
  await admin.connect();
  const producer = box.kafka.producer();
  await producer.connect();
  return { admin, producer };
}

/** Starts a lag sampler on `groups` and builds the query API with it; `close` also deletes the groups. */
export async function startOpsApp(
  box: Sandbox,
  clients: { admin: Admin; producer: Producer },
  sampling: Pick<LagSamplerOptions, 'groups' | 'intervalMs' | 'window'>,
  metrics: Registry = createMetrics('query-api'),
): Promise<OpsRig> {
  const sampler = new LagSampler({
    kafka: box.kafka,
    log: silentLog,
    dlqTopic: box.env.DLQ_TOPIC!,
    metrics,
    ...sampling,
  });
  sampler.start();
  const config = loadConfig(box.env);
  const pool = createPool(process.env.DATABASE_URL!, box.env.PG_SCHEMA!, 'test-ops');
  const redis = createRedis(config, 'test-ops');
  const app = await buildApp(config, { log: silentLog, redis, pool, checks: [], metrics, lag: sampler });
  return {
    ...clients,
    sampler,
    metrics,
    app,
    async close() {
      await sampler.stop();
      await app.close();
      redis.disconnect();
      await pool.end();
      await clients.producer.disconnect();
      await clients.admin.deleteGroups([...sampling.groups]).catch(() => undefined);
      await clients.admin.disconnect();
    },
  };
}
