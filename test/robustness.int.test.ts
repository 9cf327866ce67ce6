import { loadConfig as segmenterConfig } from '@pstream/segmenter/config';
import { createSegmenter } from '@pstream/segmenter/processor';
import type { Pool } from '@pstream/platform';
import { keys, memberDigest, readAppliedDigests, readStoredInterests } from '@pstream/interest-store';
import type { FastifyInstance } from 'fastify';
import type { Redis } from '@pstream/platform';
import { Partitioners } from 'kafkajs';
import { createSandbox, type Sandbox, silentLog, waitFor } from '@pstream/testkit';
import { type Platform, startPlatform } from '@pstream/testkit/services';

const PARTITIONS = 12;
const auth = { 'x-write-key': 'dev-write-key' };
const bearer = { authorization: 'Bearer dev-api-token' };
type Dead = {
  reason: string;
  consumerGroup: string;
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
};
type Profile = { interests: { tag: string }[]; stats: { events: Record<string, number> } };

/** One person id per partition of the events topic, as ingest's partitioner places them. */
function onePersonPerPartition(prefix: string): string[] {
  const partitioner = Partitioners.DefaultPartitioner();
  const partitionMetadata = Array.from({ length: PARTITIONS }, (_, partitionId) => ({
    partitionId,
    leader: 0,
    replicas: [0],
    isr: [0],
    partitionErrorCode: 0,
  }));
  const people = new Map<number, string>();
  for (let i = 0; people.size < PARTITIONS; i++) {
    const id = `${prefix}-${i}`;
    const p = partitioner({ topic: 't', partitionMetadata, message: { key: id, value: '' } });
    if (!people.has(p)) people.set(p, id);
  }
  return [...people.entries()].sort(([a], [b]) => a - b).map(([, id]) => id);
}

/**
 * Issue 8's scenario, in-process: poison inputs are refused at ingest with a 400 naming the path;
 * poison messages that reach the topic anyway (as an older ingest published them) go to the DLQ
 * from both groups exactly once and are applied by neither; every normal event of people on
 * every partition shows in their profile, facts and interests.
 */
describe('no input can stall a consumer (issue 8)', () => {
  let box: Sandbox;
  let platform: Platform;
  let ingest: FastifyInstance;
  let query: FastifyInstance;
  let pool: Pool;
  let redis: Redis;

  beforeAll(async () => {
    box = await createSandbox(PARTITIONS);
    platform = await startPlatform(box);
    ({ ingest, query, pool, redis } = platform);
  }, 90_000);

  afterAll(async () => {
    await platform?.close();
    await box?.cleanup();
  }, 60_000);

  const post = (url: string, payload: unknown) =>
    ingest.inject({
      method: 'POST',
      url,
      headers: { ...auth, 'content-type': 'application/json' },
      payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
    });
  const click = (userId: string, extra: Record<string, unknown> = {}) => ({
    type: 'click',
    userId,
    target: { type: 'product', id: 'p1' },
    tags: ['category:dress'],
    ...extra,
  });
  const deep = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);

  it('refuses every poison input at ingest with a 400 naming the path, keeping the valid events of the batch', async () => {
    const cases: [unknown, string][] = [
      [{ type: 'click', userId: 'probe\u0000nul', target: { type: 'product', id: 'p1' } }, 'userId'],
      [click('u-ok', { target: { type: 'product', id: 'p\u00011' } }), 'target.id'],
      [click('u-ok', { tags: ['category:a\ud800b'] }), 'tags.0'],
      [click('u-ok', { context: { device: { model: 'x\udfff' } } }), 'context.device.model'],
    ];
    for (const [event, path] of cases) {
      const res = await post('/v1/events', event);
      expect({ path, status: res.statusCode }).toEqual({ path, status: 400 });
      expect(res.json().error.details.rejected[0].errors[0].path).toBe(path);
    }
    for (const [traits, path] of [
      [{ city: 'Hang\u0000zhou' }, 'traits.city'],
      [{ 'x\u0007': 1 }, 'traits.x\u0007'],
    ] as const) {
      const identify = await post('/v1/identify', { userId: 'u-ok', traits });
      expect(identify.statusCode).toBe(400);
      expect(identify.json().error.details.rejected[0].errors[0].path).toBe(path);
    }
    // 5 000 levels of nesting inside one event of a batch: that event is refused, its neighbour lands.
    const batch = `{"events":[${JSON.stringify(click('u-deep-ok', { eventId: 'deep-ok' }))},{"type":"click","userId":"u-deep","target":{"type":"product","id":"p1"},"context":{"device":${deep(5000)}}}]}`;
    const res = await post('/v1/events', batch);
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({
      accepted: 1,
      rejected: [
        {
          index: 1,
          errors: [
            { path: expect.stringMatching(/^context\.device(\.a)+$/), message: 'is nested deeper than 32 levels' },
          ],
        },
      ],
    });
  });

  it('dead-letters poison that reaches the topic once per group, applies it nowhere, and every partition keeps going', async () => {
    const now = new Date().toISOString();
    const message = (id: string, extra: Record<string, unknown>) => ({
      v: 1,
      kind: 'event',
      eventId: id,
      source: 'demo',
      type: 'click',
      userId: 'x',
      profileKey: 'x',
      occurredAt: now,
      receivedAt: now,
      target: { type: 'product', id: 'p1' },
      tags: [],
      ...extra,
    });
    // What ingest published before this fix: the NUL id of the issue, a lone surrogate, a deep context.
    const poison = [
      {
        key: 'probe\u0000nul',
        value: JSON.stringify(message('poison-nul', { userId: 'probe\u0000nul', profileKey: 'probe\u0000nul' })),
      },
      {
        key: 'probe-surrogate',
        value: JSON.stringify(
          message('poison-sur', {
            userId: 'probe-surrogate',
            profileKey: 'probe-surrogate',
            tags: ['category:\ud800'],
          }),
        ),
      },
      {
        key: 'probe-deep',
        value: `{"v":1,"kind":"event","eventId":"poison-deep","source":"demo","type":"click","userId":"probe-deep","profileKey":"probe-deep","occurredAt":"${now}","receivedAt":"${now}","target":{"type":"product","id":"p1"},"tags":[],"context":{"device":${deep(5000)}}}`,
      },
    ];
    const producer = box.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    await producer.send({ topic: box.env.EVENTS_TOPIC!, acks: -1, messages: poison });
    await producer.disconnect();

    // Every partition, the poison's own included, gets a normal event after the poison.
    const people = onePersonPerPartition('normal');
    const res = await post('/v1/events', { events: people.map((id) => click(id, { eventId: `n-${id}` })) });
    expect(res.json()).toEqual({ accepted: people.length, rejected: [] });

    for (const id of people) {
      const profile = await waitFor(
        `profile ${id}`,
        async () => {
          const r = await query.inject({ method: 'GET', url: `/v1/profiles/${id}`, headers: bearer });
          const body = r.statusCode === 200 ? (r.json() as Profile) : undefined;
          return body && body.interests.some((i) => i.tag === 'category:dress') ? body : undefined;
        },
        30_000,
      );
      expect(profile.stats.events).toEqual({ click: 1 });
    }

    const dead: Dead[] = [];
    const dlq = box.kafka.consumer({ groupId: `${box.id}-dlq-read` });
    await dlq.connect();
    await dlq.subscribe({ topic: box.env.DLQ_TOPIC!, fromBeginning: true });
    await dlq.run({ eachMessage: async ({ message: m }) => void dead.push(JSON.parse(m.value!.toString()) as Dead) });
    try {
      await waitFor('6 dead letters', async () => (dead.length >= 6 ? true : undefined), 30_000);
      // Give a duplicate the chance to show up before counting.
      await new Promise((r) => setTimeout(r, 1000));
      expect(dead).toHaveLength(6);
      for (const group of [box.env.SCORER_GROUP!, box.env.SEGMENTER_GROUP!]) {
        const mine = dead
          .filter((d) => d.consumerGroup === group)
          .sort((a, b) => String(a.key).localeCompare(String(b.key)));
        expect(mine.map((d) => d.key)).toEqual(['probe-deep', 'probe-surrogate', 'probe\u0000nul']);
        expect(mine.map((d) => d.reason)).toEqual([
          expect.stringMatching(/^invalid message: context\.device(\.a)+: is nested deeper than 32 levels$/),
          expect.stringMatching(/^invalid message: tags\.0: .*lone UTF-16 surrogate/),
          expect.stringMatching(/^invalid message: userId: contains the control character U\+0000/),
        ]);
        for (const d of mine)
          expect(d).toMatchObject({
            topic: box.env.EVENTS_TOPIC!,
            partition: expect.any(Number),
            offset: expect.stringMatching(/^\d+$/),
          });
      }
    } finally {
      await dlq.disconnect();
    }
    // Nothing half-applied: neither store has anything of the poison people.
    const { rows } = await pool.query(`SELECT profile_key FROM people WHERE profile_key LIKE 'probe%'`);
    expect(rows).toEqual([]);
    expect(await redis.keys(`${box.env.REDIS_PREFIX}:p:{probe*`)).toEqual([]);
  }, 120_000);

  it('applies the same tricky stream of duplicates identically in both stores', async () => {
    const ev = (eventId: string, person: Record<string, string>, target = 'p1') => ({
      eventId,
      type: 'click',
      ...person,
      target: { type: 'product', id: target },
      tags: ['category:dup'],
    });
    const steps: [string, unknown][] = [
      ['/v1/events', ev('same-id', { userId: 'dup-a' })],
      ['/v1/events', ev('same-id', { userId: 'dup-b' })], // same id, other person: a different event in both
      ['/v1/events', ev('changed', { userId: 'dup-a' }, 'p2')],
      ['/v1/events', { ...ev('changed', { userId: 'dup-a' }, 'p3'), type: 'like' }], // same id and person, changed content: first wins
      ['/v1/events', ev('before-merge', { anonymousId: 'dup-anon' })],
      ['/v1/identify', { eventId: 'merge-1', userId: 'dup-c', anonymousId: 'dup-anon' }],
      ['/v1/events', ev('before-merge', { anonymousId: 'dup-anon' })], // a retry across the merge: counted once
      ['/v1/events', ev('marker', { userId: 'dup-c' }, 'marker')],
    ];
    for (const [url, body] of steps) expect((await post(url, body)).statusCode).toBe(202);

    const profile = async (id: string, until: (p: Profile) => boolean) =>
      waitFor(
        `profile ${id}`,
        async () => {
          const r = await query.inject({ method: 'GET', url: `/v1/profiles/${id}`, headers: bearer });
          const body = r.statusCode === 200 ? (r.json() as Profile) : undefined;
          return body && until(body) ? body : undefined;
        },
        30_000,
      );
    // Each store applies on its own: wait until both show the person's last event (facts in
    // Postgres, interests in Redis), then hold both to the exact counts.
    const has = (p: Profile, tag: string) => p.interests.some((i) => i.tag === tag);
    const a = await profile('dup-a', (p) => (p.stats?.events.click ?? 0) >= 2 && has(p, 'product:p2'));
    const b = await profile('dup-b', (p) => (p.stats?.events.click ?? 0) >= 1 && has(p, 'product:p1'));
    const c = await profile('dup-c', (p) => (p.stats?.events.click ?? 0) >= 2 && has(p, 'product:marker'));
    expect(a.stats.events).toEqual({ click: 2 });
    expect(a.interests.map((i) => i.tag).sort()).toEqual(['category:dup', 'product:p1', 'product:p2']);
    expect(b.stats.events).toEqual({ click: 1 });
    expect(b.interests.map((i) => i.tag).sort()).toEqual(['category:dup', 'product:p1']);
    expect(c.stats.events).toEqual({ click: 2 }); // before-merge once, marker once
    expect(c.interests.map((i) => i.tag).sort()).toEqual(['category:dup', 'product:marker', 'product:p1']);

    // The dedupe records themselves: the same keys in Redis and Postgres.
    // Redis keeps digests of the records (memberDigest): the same set as Postgres' records' digests.
    const seen = new Set<string>();
    for (const digests of (
      await readAppliedDigests(redis, keys(box.env.REDIS_PREFIX!), ['dup-a', 'dup-b', 'dup-c', 'dup-anon'])
    ).values())
      for (const d of digests) seen.add(d);
    const { rows } = await pool.query<{ k: string }>(
      `SELECT source || '|' || event_id AS k FROM applied_events WHERE event_id LIKE ANY(ARRAY['same-id@%','changed@%','before-merge@%','marker@%'])`,
    );
    expect([...seen].sort()).toEqual(rows.map((r) => memberDigest(r.k)).sort());
    expect(rows.map((r) => r.k).sort()).toEqual([
      'demo|before-merge@dup-anon',
      'demo|changed@dup-a',
      'demo|marker@dup-c',
      'demo|same-id@dup-a',
      'demo|same-id@dup-b',
    ]);
  }, 90_000);

  it('the segmenter refuses to start when its stored positions lie beyond the topic end (topic recreated)', async () => {
    const groupId = `${box.id}-wiped`;
    await pool.query(
      `INSERT INTO consumer_offsets (group_id, topic, partition, next_offset) VALUES ($1, $2, 3, 5000000)`,
      [groupId, box.env.EVENTS_TOPIC],
    );
    const producer = box.kafka.producer();
    await producer.connect();
    // A short grace: the position stays beyond the end however long it is re-checked.
    const env = { ...box.env, SEGMENTER_GROUP: groupId, CONSUMER_POSITION_GRACE_SECONDS: '1' };
    const segmenter = createSegmenter(segmenterConfig(env), { kafka: box.kafka, pool, producer, log: silentLog });
    try {
      await expect(segmenter.start()).rejects.toMatchObject({
        code: 'PLT_POSITION_BEYOND_END',
        message: expect.stringMatching(
          new RegExp(
            `group ${groupId} .*partition 3: stored 5000000 > end \\d+.*still after 1 s.*Refusing to skip events`,
          ),
        ),
      });
    } finally {
      await segmenter.stop();
      await producer.disconnect();
    }
  }, 60_000);

  it('isolates a message only one store refuses: the scorer dead-letters it, its neighbours apply, the segmenter applies it (documented)', async () => {
    // A person whose stored Redis state does not fit the script (a visit hash that is a string):
    // every event of theirs fails inside the Lua script with WRONGTYPE.
    await redis.set(`${box.env.REDIS_PREFIX}:p:{broken-state}:vis`, 'not a hash');
    const events = [
      click('split-1', { eventId: 's-1' }),
      click('broken-state', { eventId: 's-broken' }),
      click('split-2', { eventId: 's-2' }),
    ];
    // One key for all three, so they share a partition and a chunk.
    const producer = box.kafka.producer();
    await producer.connect();
    const now = new Date().toISOString();
    await producer.send({
      topic: box.env.EVENTS_TOPIC!,
      acks: -1,
      messages: events.map((e) => ({
        key: 'same-partition',
        value: JSON.stringify({
          v: 1,
          kind: 'event',
          source: 'demo',
          profileKey: e.userId,
          occurredAt: now,
          receivedAt: now,
          ...e,
        }),
      })),
    });
    await producer.disconnect();
    for (const id of ['split-1', 'split-2']) {
      await waitFor(
        `interests of ${id}`,
        async () =>
          (await readStoredInterests(redis, keys(box.env.REDIS_PREFIX!), [id])).get(id)!.size === 2 ? true : undefined,
        30_000,
      );
    }
    const dead: Dead[] = [];
    const dlq = box.kafka.consumer({ groupId: `${box.id}-dlq-split` });
    await dlq.connect();
    await dlq.subscribe({ topic: box.env.DLQ_TOPIC!, fromBeginning: true });
    await dlq.run({ eachMessage: async ({ message: m }) => void dead.push(JSON.parse(m.value!.toString()) as Dead) });
    try {
      const record = await waitFor(
        'the broken event on the DLQ',
        async () => dead.find((d) => d.key === 'same-partition'),
        30_000,
      );
      expect(record).toMatchObject({
        consumerGroup: box.env.SCORER_GROUP!,
        reason: expect.stringMatching(/^apply failed: WRONGTYPE .*user_script/),
      });
      expect(dead.filter((d) => d.key === 'same-partition')).toHaveLength(1);
    } finally {
      await dlq.disconnect();
    }
    // The segmenter holds it: a store-specific refusal is dead-lettered by that group alone.
    const { rows } = await pool.query(`SELECT n FROM event_counts WHERE profile_key = 'broken-state'`);
    expect(rows).toEqual([{ n: 1 }]);
    await redis.del(`${box.env.REDIS_PREFIX}:p:{broken-state}:vis`);
  }, 90_000);
});
