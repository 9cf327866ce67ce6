/**
 * `pnpm events:seal` (platform's seal-topic.ts, docs/privacy.md): a topic written in clear, as
 * before sealing, is rewritten into a sealed one — interrupted by a failure and resumed by the
 * command itself — and the copy holds every record exactly once, each person's records in their
 * order, an erased person's unreadable.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { TopicMessage } from '@pstream/events';
import {
  checkSealedCopy,
  copyIsExact,
  createKeyring,
  createPool,
  isSealed,
  loadKeyringConfig,
  sealTopic,
  type Keyring,
  type Pool,
} from '@pstream/platform';
import { migrate } from '@pstream/profile-store';
import type { KafkaMessage } from 'kafkajs';
import { createSandbox, produceMessages, type Sandbox, silentLog, testId, waitFor } from '@pstream/testkit';

const ROOT = path.resolve(__dirname, '..');
const PEOPLE = Array.from({ length: 20 }, (_, i) => `u-seal-${i}`);
const ERASED = 'u-seal-erased';

function events(from: number, n: number): TopicMessage[] {
  return [...PEOPLE, ERASED].flatMap((profileKey) =>
    Array.from({ length: n }, (_, i) => {
      const at = new Date(Date.UTC(2026, 10, 1) + (from + i) * 60_000).toISOString();
      return {
        v: 1,
        kind: 'event',
        eventId: `e-${from + i}`,
        source: 'test',
        type: 'click',
        userId: profileKey,
        profileKey,
        occurredAt: at,
        receivedAt: at,
        target: { type: 'product', id: `p-${profileKey}` },
        tags: [],
      } as TopicMessage;
    }),
  );
}

/** Every record of `topic` in partition order, as (partition, message). */
async function readAll(
  box: Sandbox,
  topic: string,
  count: number,
): Promise<{ partition: number; message: KafkaMessage }[]> {
  const out: { partition: number; message: KafkaMessage }[] = [];
  const consumer = box.kafka.consumer({ groupId: `test-seal-read-${testId()}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ partition, message }) => void out.push({ partition, message }) });
  try {
    await waitFor(`${count} records of ${topic}`, async () => (out.length >= count ? true : undefined), 60_000);
  } finally {
    await consumer.disconnect();
  }
  return out;
}

describe('pnpm events:seal', () => {
  let box: Sandbox;
  let pool: Pool;
  let keyring: Keyring;
  let target: string;
  beforeAll(async () => {
    box = await createSandbox(3);
    target = `${box.env.EVENTS_TOPIC}.sealed`;
    pool = createPool(process.env.DATABASE_URL!, box.env.PG_SCHEMA!, 'test-seal', 4);
    await migrate(pool, box.env.PG_SCHEMA!);
    keyring = createKeyring(loadKeyringConfig(box.env), pool);
  }, 60_000);
  afterAll(async () => {
    const admin = box.kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [target] }).catch(() => undefined);
    await admin.disconnect();
    await pool?.end();
    await box?.cleanup();
  }, 60_000);

  it('copies a clear topic sealed, resumes after a failure, and the check finds every record exactly once', async () => {
    const source = box.env.EVENTS_TOPIC!;
    await produceMessages(box.kafka, source, events(0, 6));
    await keyring.shred(pool, [ERASED]);

    // A first run that fails part-way (the keyring goes away after one batch): what it committed stays.
    let calls = 0;
    const failing: Pick<Keyring, 'seal' | 'open'> = {
      open: (values) => keyring.open(values),
      seal: (records) => (++calls > 1 ? Promise.reject(new Error('Postgres went away')) : keyring.seal(records)),
    };
    await expect(
      sealTopic({ kafka: box.kafka, keyring: failing, from: source, to: target, log: silentLog, pollMs: 100 }),
    ).rejects.toThrow(/Postgres went away/);
    const partial = await checkSealedCopy(box.kafka, keyring, source, target);
    expect(partial.target).toBeGreaterThan(0);
    expect(partial.missing).toBeGreaterThan(0);
    expect(partial.duplicated).toBe(0);

    // More events arrive meanwhile; the command resumes, prints progress and checks the copy.
    await produceMessages(box.kafka, source, events(100, 3));
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'scripts/events-seal.ts', '--from', source, '--to', target],
      {
        cwd: ROOT,
        env: { ...box.env, LOG_LEVEL: 'warn' },
      },
    );
    expect(stdout).toMatch(new RegExp(`seal ${source.replace(/\./g, '\\.')} → .*: \\d+/\\d+ records`));
    expect(stdout).toMatch(
      /check: every one of 189 records is in .* exactly once, sealed \(9 of erased people, unreadable\)/,
    );

    const check = await checkSealedCopy(box.kafka, keyring, source, target);
    expect(copyIsExact(check)).toBe(true);
    expect(check).toMatchObject({ source: 189, target: 189, equal: 180, shredded: 9, clear: 0 });

    // Keyed by subject, sealed, and each person's records in their original order on one partition.
    const copied = await readAll(box, target, 189);
    expect(copied.every(({ message }) => isSealed(message.value))).toBe(true);
    const opened = await keyring.open(copied.map((c) => c.message.value));
    const order = new Map<string, { partitions: Set<number>; ids: string[] }>();
    opened.forEach((o, i) => {
      if (o.kind !== 'opened') return;
      const m = JSON.parse(o.plaintext.toString()) as { profileKey: string; eventId: string };
      expect(copied[i]!.message.key!.toString()).toBe(keyring.subjectOf(m.profileKey));
      const entry = order.get(m.profileKey) ?? { partitions: new Set(), ids: [] };
      entry.partitions.add(copied[i]!.partition);
      entry.ids.push(m.eventId);
      order.set(m.profileKey, entry);
    });
    expect([...order.keys()].sort()).toEqual([...PEOPLE].sort());
    const want = [...events(0, 6), ...events(100, 3)].filter((e) => e.profileKey === PEOPLE[0]).map((e) => e.eventId);
    for (const { partitions, ids } of order.values()) {
      expect(partitions.size).toBe(1);
      expect(ids).toEqual(want);
    }
  }, 240_000);
});
