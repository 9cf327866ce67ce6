import { createPool, type Pool } from '@pstream/platform';
import { migrate } from '@pstream/profile-store';
import type { Producer } from 'kafkajs';
import { createSandbox, type Sandbox, silentLog, waitFor } from '@pstream/testkit';
import { loadConfig } from '../src/config';
import { createSegmenter, type Segmenter } from '../src/processor';

const PEOPLE = 60;

describe('identity merges through Kafka with two segmenters sharing the partitions', () => {
  let box: Sandbox;
  let pool: Pool;
  const segmenters: Segmenter[] = [];
  const producers: Producer[] = [];

  beforeAll(async () => {
    box = await createSandbox(6);
    const cfg = loadConfig(box.env);
    pool = createPool(cfg.DATABASE_URL, cfg.PG_SCHEMA, 'test-merge', 8);
    await migrate(pool, cfg.PG_SCHEMA);
    for (let i = 0; i < 2; i++) {
      const producer = box.kafka.producer();
      await producer.connect();
      producers.push(producer);
      const s = createSegmenter(cfg, { kafka: box.kafka, pool, producer, log: silentLog });
      segmenters.push(s);
      await s.start();
    }
  }, 60_000);

  afterAll(async () => {
    for (const s of segmenters) await s.stop();
    for (const p of producers) await p.disconnect();
    await pool?.end();
    await box?.cleanup();
  }, 60_000);

  it('puts every anonymous event on the user exactly once, before, during and after the identify', async () => {
    const now = Date.now();
    const msg = (kind: string, id: string, body: Record<string, unknown>) => {
      const at = new Date(now - 60_000).toISOString();
      return {
        key: (body.profileKey as string) ?? id,
        value: JSON.stringify({ v: 1, kind, eventId: id, source: 'merge', occurredAt: at, receivedAt: at, ...body }),
      };
    };
    const click = (i: number, n: number) =>
      msg('event', `c-${i}-${n}`, {
        type: 'click',
        anonymousId: `anon-${i}`,
        profileKey: `anon-${i}`,
        target: { type: 'product', id: 'p' },
        tags: [],
      });
    const producer = box.kafka.producer();
    await producer.connect();
    const topic = box.env.EVENTS_TOPIC!;
    // Anonymous events keyed by anonymousId and identifies keyed by userId land on different
    // partitions, read by either segmenter; sends interleave so merges race the events.
    for (let round = 0; round < 4; round++) {
      const messages = [];
      for (let i = 0; i < PEOPLE; i++) {
        messages.push(click(i, round * 2), click(i, round * 2 + 1));
        if (round === 1)
          messages.push(
            msg('identify', `id-${i}`, {
              userId: `user-${i}`,
              anonymousId: `anon-${i}`,
              profileKey: `user-${i}`,
              traits: { i },
            }),
          );
      }
      await producer.send({ topic, acks: -1, messages });
    }
    await producer.disconnect();
    const schema = box.env.PG_SCHEMA!;
    await waitFor(
      'all events applied',
      async () => {
        const { rows } = await pool.query(`SELECT coalesce(sum(n), 0)::int AS n FROM ${schema}.event_counts`);
        return rows[0].n === PEOPLE * 8 ? true : undefined;
      },
      40_000,
    );
    await waitFor(
      'all identifies applied',
      async () => {
        const { rows } = await pool.query(
          `SELECT count(*)::int AS n FROM ${schema}.identities WHERE profile_key LIKE 'user-%' AND id LIKE 'anon-%'`,
        );
        return rows[0].n === PEOPLE ? true : undefined;
      },
      40_000,
    );
    const { rows } = await pool.query<{ profile_key: string; n: number }>(
      `SELECT profile_key, n FROM ${schema}.event_counts ORDER BY profile_key`,
    );
    expect(rows).toHaveLength(PEOPLE);
    for (const r of rows) expect(r).toEqual({ profile_key: expect.stringMatching(/^user-/), n: 8 });
    const { rows: orphans } = await pool.query(
      `SELECT profile_key FROM ${schema}.people WHERE profile_key LIKE 'anon-%'`,
    );
    expect(orphans).toEqual([]);
  }, 60_000);
});
