import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { REPO_ROOT } from './root';
import { testId, waitFor } from './sandbox';

const run = promisify(execFile);
const BROKER_SH = path.join(REPO_ROOT, 'infra/kafka/broker.sh');

/** Every message on `topic`, read from the beginning by a fresh group, once `until` holds. */
export async function readTopic<T = Record<string, unknown>>(
  kafka: Kafka,
  topic: string,
  until: (values: T[]) => boolean,
  timeoutMs = 30_000,
  /** How a value becomes T: JSON by default; a sealed topic's values are opened first (keyring.open). */
  decode: (value: Buffer) => T | Promise<T> = (value) => JSON.parse(value.toString('utf8')) as T,
): Promise<T[]> {
  const groupId = `test-read-${testId()}`;
  const consumer = kafka.consumer({ groupId });
  const values: T[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => void values.push(await decode(message.value!)),
  });
  try {
    await waitFor(`messages on ${topic}`, async () => (until(values) ? true : undefined), timeoutMs);
    return values;
  } finally {
    await consumer.disconnect();
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect();
  }
}

/** A port in 20000-29999 (the range COMMON.md gives the helpers' own servers). */
export const randomPort = () => 20_000 + Math.floor(Math.random() * 10_000);

/** A throwaway single-node Kafka on its own ports and data dir, which a test may stop and start. */
export async function throwawayBroker(): Promise<{
  brokers: string;
  kafka: Kafka;
  start(): Promise<void>;
  stop(): Promise<void>;
  remove(): Promise<void>;
}> {
  const dir = await mkdtemp(path.join(tmpdir(), 'pstream-ingest-broker-'));
  const port = randomPort();
  const controller = port === 29_999 ? 20_000 : port + 1;
  const brokers = `127.0.0.1:${port}`;
  const start = async () =>
    void (await run('bash', [BROKER_SH, 'start', dir, String(port), String(controller)], {
      env: { ...process.env, KAFKA_HEAP_OPTS: '-Xmx256m -Xms128m' },
    }));
  const stop = async () => void (await run('bash', [BROKER_SH, 'stop', dir]));
  return {
    brokers,
    kafka: new Kafka({
      clientId: 'test',
      brokers: [brokers],
      logLevel: logLevel.NOTHING,
      retry: { retries: 3, initialRetryTime: 100 },
    }),
    start,
    stop,
    async remove() {
      await stop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
