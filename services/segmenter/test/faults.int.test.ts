import { createPool } from '@pstream/platform';
import { migrate } from '@pstream/profile-store';
import pino from 'pino';
import { createSandbox, type Sandbox, startThrowawayPostgres, waitFor } from '@pstream/testkit';
import { loadConfig } from '../src/config';
import { createSegmenter } from '../src/processor';
import { countsOf, total, wantCounts, wave } from './waves';

describe('segmenter under faults: nothing lost, nothing counted twice', () => {
  let box: Sandbox;

  beforeEach(async () => {
    box = await createSandbox(4);
  });
  afterEach(async () => {
    await box?.cleanup();
  });

  it('waits while its Postgres is down and catches up exactly when it is back', async () => {
    const own = await startThrowawayPostgres();
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (s: string) => void lines.push(s) });
    const env = { ...box.env, DATABASE_URL: own.url, CONSUMER_STALL_SECONDS: '2' };
    const cfg = loadConfig(env);
    const pool = createPool(cfg.DATABASE_URL, cfg.PG_SCHEMA, 'test-faults', 4);
    const producer = box.kafka.producer();
    await producer.connect();
    const segmenter = createSegmenter(cfg, { kafka: box.kafka, pool, producer, log });
    try {
      await migrate(pool, cfg.PG_SCHEMA);
      await segmenter.start();
      await producer.send({ topic: cfg.EVENTS_TOPIC, acks: -1, messages: wave('p1', 2000) });
      await producer.send({ topic: cfg.EVENTS_TOPIC, acks: -1, messages: wave('p2', 2000) });
      await waitFor(
        'some events applied',
        async () => ((await total(pool, cfg.PG_SCHEMA)) > 0 ? true : undefined),
        30_000,
        10,
      );
      own.stop();
      await producer.send({ topic: cfg.EVENTS_TOPIC, acks: -1, messages: wave('p3', 2000) });
      await waitFor('the segmenter to meet the outage', async () =>
        lines.some((l) => l.includes('transient Postgres failure')) ? true : undefined,
      );
      // What /readyz reports: the stalled partition, named with its group and offset.
      const stalled = await waitFor('the stall to be reported', async () => segmenter.unreadyReason(), 30_000);
      expect(stalled).toMatch(
        new RegExp(
          `^group ${cfg.SEGMENTER_GROUP} stalled: ${cfg.EVENTS_TOPIC.replace(/\./g, '\\.')}\\[\\d+\\] at offset \\d+ for \\d+ s`,
        ),
      );
      expect(segmenter.stalledPartitions().length).toBeGreaterThan(0);
      own.start();
      await waitFor(
        'every event applied after Postgres returned',
        async () => ((await total(pool, cfg.PG_SCHEMA).catch(() => 0)) === 6000 ? true : undefined),
        60_000,
      );
      expect(await countsOf(pool, cfg.PG_SCHEMA)).toEqual(wantCounts([2000, 2000, 2000]));
      await waitFor('readiness back once every partition moved on', async () =>
        segmenter.unreadyReason() === undefined ? true : undefined,
      );
    } finally {
      await segmenter.stop();
      await producer.disconnect();
      await pool.end();
      own.destroy();
    }
  }, 90_000);

  it('counts nothing twice when Kafka forgot the group’s offsets: it seeks to the positions stored in Postgres', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
    const cfg = loadConfig(box.env);
    const pool = createPool(cfg.DATABASE_URL, cfg.PG_SCHEMA, 'test-seek', 4);
    const producer = box.kafka.producer();
    await producer.connect();
    const admin = box.kafka.admin();
    await admin.connect();
    try {
      await migrate(pool, cfg.PG_SCHEMA);
      const first = createSegmenter(cfg, { kafka: box.kafka, pool, producer, log });
      await first.start();
      await producer.send({ topic: cfg.EVENTS_TOPIC, acks: -1, messages: wave('s1', 1000) });
      await waitFor(
        'the first wave applied',
        async () => ((await total(pool, cfg.PG_SCHEMA)) === 1000 ? true : undefined),
        30_000,
      );
      await first.stop();
      await admin.resetOffsets({ groupId: cfg.SEGMENTER_GROUP, topic: cfg.EVENTS_TOPIC, earliest: true });
      const second = createSegmenter(cfg, { kafka: box.kafka, pool, producer, log });
      await second.start();
      try {
        await producer.send({ topic: cfg.EVENTS_TOPIC, acks: -1, messages: wave('s2', 500) });
        await waitFor(
          'the second wave applied',
          async () => ((await total(pool, cfg.PG_SCHEMA)) >= 1500 ? true : undefined),
          30_000,
        );
        await waitFor('the seek logged', async () =>
          lines.some((l) => l.includes('seeked to stored offsets')) ? true : undefined,
        );
        expect(await countsOf(pool, cfg.PG_SCHEMA)).toEqual(wantCounts([1000, 500]));
      } finally {
        await second.stop();
      }
    } finally {
      await admin.disconnect();
      await producer.disconnect();
      await pool.end();
    }
  }, 60_000);
});
