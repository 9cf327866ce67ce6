import { existsSync } from 'node:fs';
import { Kafka, logLevel } from 'kafkajs';
import { Redis } from 'ioredis';
import pg from 'pg';
import { loadDefaultEnv } from './env';

type Stop = () => Promise<unknown>;
const stops: Stop[] = [];
(globalThis as { __pstreamStops?: Stop[] }).__pstreamStops = stops;

/**
 * Where integration tests find Kafka, Redis and Postgres: containers started with
 * testcontainers when a container runtime answers (and TEST_CONTAINERS is not "false");
 * otherwise the local servers that `pnpm infra:up` runs, at the addresses in .env(.example).
 * Either way the servers are real; each test then isolates itself (own topic, group, Redis
 * prefix and Postgres schema).
 */
export default async function globalSetup(): Promise<void> {
  loadDefaultEnv();
  if (process.env.TEST_CONTAINERS !== 'false' && hasContainerRuntime()) {
    await startContainers();
  }
  await assertReachable();
}

function hasContainerRuntime(): boolean {
  return process.env.DOCKER_HOST !== undefined || existsSync('/var/run/docker.sock');
}

async function startContainers(): Promise<void> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const net = await import('node:net');
  const freePort = () =>
    new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, () => {
        const { port } = s.address() as { port: number };
        s.close(() => resolve(port));
      });
    });
  const kafkaPort = await freePort();
  const [kafka, redis, postgres] = await Promise.all([
    new GenericContainer('apache/kafka:3.9.1')
      .withExposedPorts({ container: 9092, host: kafkaPort })
      .withEnvironment({
        KAFKA_NODE_ID: '1',
        KAFKA_PROCESS_ROLES: 'broker,controller',
        KAFKA_LISTENERS: 'PLAINTEXT://:9092,CONTROLLER://:9093',
        KAFKA_ADVERTISED_LISTENERS: `PLAINTEXT://127.0.0.1:${kafkaPort}`,
        KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
        KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
        KAFKA_CONTROLLER_QUORUM_VOTERS: '1@localhost:9093',
        KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
        KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
        KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
        KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
      })
      .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/))
      .start(),
    new GenericContainer('redis:7').withExposedPorts(6379).start(),
    new GenericContainer('postgres:15')
      .withEnvironment({ POSTGRES_HOST_AUTH_METHOD: 'trust', POSTGRES_DB: 'profiles' })
      .withExposedPorts(5432)
      .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
      .start(),
  ]);
  stops.push(
    () => kafka.stop(),
    () => redis.stop(),
    () => postgres.stop(),
  );
  process.env.KAFKA_BROKERS = `127.0.0.1:${kafkaPort}`;
  process.env.REDIS_URL = `redis://${redis.getHost()}:${redis.getMappedPort(6379)}/0`;
  process.env.DATABASE_URL = `postgres://postgres@${postgres.getHost()}:${postgres.getMappedPort(5432)}/profiles`;
}

async function assertReachable(): Promise<void> {
  const hint = 'start the local servers with `pnpm infra:up` (or run `pnpm test`, which does)';
  const kafka = new Kafka({
    brokers: process.env.KAFKA_BROKERS!.split(','),
    logLevel: logLevel.NOTHING,
    retry: { retries: 2 },
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.listTopics();
  } catch (err) {
    throw new Error(`Kafka is not reachable at ${process.env.KAFKA_BROKERS}: ${(err as Error).message}; ${hint}`);
  } finally {
    await admin.disconnect();
  }
  const redis = new Redis(process.env.REDIS_URL!, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    throw new Error(`Redis is not reachable at ${process.env.REDIS_URL}: ${(err as Error).message}; ${hint}`);
  } finally {
    redis.disconnect();
  }
  const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (err) {
    throw new Error(`Postgres is not reachable at ${process.env.DATABASE_URL}: ${(err as Error).message}; ${hint}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}
