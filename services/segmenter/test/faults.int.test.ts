import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createPool, migrate, type Pool } from '@pstream/platform';
import pino from 'pino';
import { createSandbox, waitFor, type Sandbox } from '../../../test/helpers';
import { loadConfig } from '../src/config';
import { createSegmenter } from '../src/processor';
import { startThrowawayPostgres } from './throwaway-postgres';

const ROOT = path.resolve(__dirname, '../../..');
const PEOPLE = 40;

/** `n` click/like events spread over PEOPLE people, as the events topic carries them. */
function wave(tag: string, n: number) {
  const now = Date.now();
  return Array.from({ length: n }, (_, i) => {
    const userId = `f-${i % PEOPLE}`;
    const at = new Date(now - (i % 1000) * 60_000).toISOString();
    const value = {
      v: 1, kind: 'event', eventId: `${tag}-${i}`, source: 'faults', type: i % 3 === 0 ? 'like' : 'click', userId, profileKey: userId,
      occurredAt: at, receivedAt: at, target: { type: 'product', id: `p-${i % 7}` }, tags: ['category:x'],
    };
    return { key: userId, value: JSON.stringify(value) };
  });
}

async function countsOf(pool: Pool, schema: string): Promise<Map<string, string>> {
  const { rows } = await pool.query<{ profile_key: string; c: string }>(
    `SELECT profile_key, string_agg(type || '=' || n, ',' ORDER BY type) AS c FROM ${schema}.event_counts GROUP BY profile_key`,
  );
  return new Map(rows.map((r) => [r.profile_key, r.c]));
}

function wantCounts(waves: number[]): Map<string, string> {
  const per = new Map<string, { click: number; like: number }>();
  for (const n of waves) {
    for (let i = 0; i < n; i++) {
      const c = per.get(`f-${i % PEOPLE}`) ?? { click: 0, like: 0 };
      if (i % 3 === 0) c.like += 1;
      else c.click += 1;
      per.set(`f-${i % PEOPLE}`, c);
    }
  }
  return new Map([...per].map(([k, c]) => [k, [c.click > 0 && `click=${c.click}`, c.like > 0 && `like=${c.like}`].filter(Boolean).join(',')]));
}

async function total(pool: Pool, schema: string): Promise<number> {
  const { rows } = await pool.query(`SELECT coalesce(sum(n), 0)::int AS n FROM ${schema}.event_counts`);
  return rows[0].n as number;
}

describe('segmenter under faults: nothing lost, nothing counted twice', () => {
  let box: Sandbox;

  beforeEach(async () => {
    box = await createSandbox(4);
  });
  afterEach(async () => {
    await box?.cleanup();
  });

  it('catches up exactly after a SIGKILL mid-stream and a restart', async () => {
    const schema = box.env.PG_SCHEMA!;
    const producer = box.kafka.producer();
    await producer.connect();
    const start = (): ChildProcess =>
      spawn(path.join(ROOT, 'node_modules/.bin/tsx'), ['services/segmenter/src/main.ts'], {
        cwd: ROOT,
        env: { ...box.env, SEGMENTER_PORT: String(20000 + Math.floor(Math.random() * 10000)), SEGMENTER_HOST: '127.0.0.1', LOG_LEVEL: 'warn', LOG_FORMAT: 'json' },
        stdio: 'ignore',
      });
    const exited = (child: ChildProcess) => new Promise((resolve) => child.once('exit', resolve));
    try {
      await producer.send({ topic: box.env.EVENTS_TOPIC!, acks: -1, messages: wave('w1', 8000) });
      const first = start();
      await waitFor('the first segmenter to apply some events', async () => ((await total(box.pg, schema).catch(() => 0)) > 0 ? true : undefined), 40_000, 10);
      first.kill('SIGKILL');
      await exited(first);
      const appliedAtKill = await total(box.pg, schema);
      await producer.send({ topic: box.env.EVENTS_TOPIC!, acks: -1, messages: wave('w2', 4000) });
      const second = start();
      try {
        await waitFor('every event applied after the restart', async () => ((await total(box.pg, schema)) === 12_000 ? true : undefined), 60_000);
        expect(await countsOf(box.pg, schema)).toEqual(wantCounts([8000, 4000]));
        expect(appliedAtKill).toBeLessThan(8000); // the kill came mid-stream
      } finally {
        second.kill('SIGTERM');
        await exited(second);
      }
    } finally {
      await producer.disconnect();
    }
  }, 90_000);

  it('waits while its Postgres is down and catches up exactly when it is back', async () => {
    const own = await startThrowawayPostgres();
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (s: string) => void lines.push(s) });
    const env = { ...box.env, DATABASE_URL: own.url };
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
      await waitFor('some events applied', async () => ((await total(pool, cfg.PG_SCHEMA)) > 0 ? true : undefined), 30_000, 10);
      own.stop();
      await producer.send({ topic: cfg.EVENTS_TOPIC, acks: -1, messages: wave('p3', 2000) });
      await waitFor('the segmenter to meet the outage', async () => (lines.some((l) => l.includes('transient Postgres failure')) ? true : undefined));
      own.start();
      await waitFor('every event applied after Postgres returned', async () => ((await total(pool, cfg.PG_SCHEMA).catch(() => 0)) === 6000 ? true : undefined), 60_000);
      expect(await countsOf(pool, cfg.PG_SCHEMA)).toEqual(wantCounts([2000, 2000, 2000]));
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
      await waitFor('the first wave applied', async () => ((await total(pool, cfg.PG_SCHEMA)) === 1000 ? true : undefined), 30_000);
      await first.stop();
      await admin.resetOffsets({ groupId: cfg.SEGMENTER_GROUP, topic: cfg.EVENTS_TOPIC, earliest: true });
      const second = createSegmenter(cfg, { kafka: box.kafka, pool, producer, log });
      await second.start();
      try {
        await producer.send({ topic: cfg.EVENTS_TOPIC, acks: -1, messages: wave('s2', 500) });
        await waitFor('the second wave applied', async () => ((await total(pool, cfg.PG_SCHEMA)) >= 1500 ? true : undefined), 30_000);
        await waitFor('the seek logged', async () => (lines.some((l) => l.includes('seeked to stored offsets')) ? true : undefined));
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
