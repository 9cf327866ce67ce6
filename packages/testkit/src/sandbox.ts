import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { Kafka, logLevel } from 'kafkajs';
import { Redis } from 'ioredis';
import pg from 'pg';
import pino from 'pino';

/** A short random id for naming a test's own topic, group, key prefix and schema. */
export function testId(): string {
  return randomBytes(5).toString('hex');
}

/** A TCP port of 127.0.0.1 free right now, for a process the test starts (a broker, Prometheus). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export const silentLog = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

export function testKafka(): Kafka {
  return new Kafka({ clientId: 'test', brokers: process.env.KAFKA_BROKERS!.split(','), logLevel: logLevel.NOTHING });
}

/** Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs` with `what`. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 20_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** An isolated slice of the real servers: own topics, Redis key prefix and Postgres schema. */
export type Sandbox = {
  id: string;
  env: NodeJS.ProcessEnv;
  kafka: Kafka;
  redis: Redis;
  pg: pg.Pool;
  cleanup(): Promise<void>;
};

export async function createSandbox(partitions = 3): Promise<Sandbox> {
  const id = testId();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    EVENTS_TOPIC: `test.${id}.events`,
    DLQ_TOPIC: `test.${id}.dlq`,
    LIFECYCLE_TOPIC: `test.${id}.lifecycle`,
    AUDIENCES_TOPIC: `test.${id}.audiences`,
    REDIS_PREFIX: `test:${id}`,
    PG_SCHEMA: `test_${id}`,
    SCORER_GROUP: `test-${id}-scorer`,
    SEGMENTER_GROUP: `test-${id}-segmenter`,
    LOG_LEVEL: 'silent',
  };
  const kafka = testKafka();
  const admin = kafka.admin();
  await admin.connect();
  const topics = [env.EVENTS_TOPIC!, env.DLQ_TOPIC!, env.LIFECYCLE_TOPIC!, env.AUDIENCES_TOPIC!];
  await admin.createTopics({
    waitForLeaders: true,
    topics: topics.map((topic) => ({ topic, numPartitions: partitions })),
  });
  const redis = new Redis(process.env.REDIS_URL!);
  const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
  return {
    id,
    env,
    kafka,
    redis,
    pg: pool,
    async cleanup() {
      await admin.deleteTopics({ topics }).catch(() => undefined);
      await admin.deleteGroups([env.SCORER_GROUP!, env.SEGMENTER_GROUP!]).catch(() => undefined);
      await admin.disconnect();
      const stream = redis.scanStream({ match: `${env.REDIS_PREFIX}:*`, count: 500 });
      for await (const batch of stream as AsyncIterable<string[]>) if (batch.length > 0) await redis.del(...batch);
      redis.disconnect();
      await pool.query(`DROP SCHEMA IF EXISTS ${env.PG_SCHEMA} CASCADE`);
      await pool.end();
    },
  };
}
