/**
 * The merged-id cap (docs/model.md §4.4) end to end: one user identified with more anonymous ids
 * than MAX_MERGED_IDS goes through Kafka into the real scorer and segmenter. Both stores take the
 * first links up to the cap and refuse the rest alike; the refused ids stay people of their own.
 */
import type { TopicMessage } from '@pstream/events';
import { keys, readStoredInterests } from '@pstream/interest-store';
import { createMetrics, type Pool, type Redis, type Registry } from '@pstream/platform';
import { loadConfig as scorerConfig } from '@pstream/scorer/config';
import { createScorerConsumer } from '@pstream/scorer/processor';
import { loadConfig as segmenterConfig } from '@pstream/segmenter/config';
import { createSegmenter } from '@pstream/segmenter/processor';
import { consumed, produceMessages, type Sandbox, silentLog } from '@pstream/testkit';
import { storeSandbox } from '@pstream/testkit/services';

const CAP = 3;
const ANONS = 6;
const AT = new Date(Date.now() - 86_400_000).toISOString();
const anon = (i: number) => `cap-a${i}`;
const USER = 'cap-u';

/** Per anonymous id: a click on its own product, then an identify linking it to the user (traits say which). */
function stream(): TopicMessage[] {
  const messages: TopicMessage[] = [];
  for (let i = 0; i < ANONS; i++) {
    const base = { v: 1 as const, source: 'test', occurredAt: AT, receivedAt: AT };
    messages.push({
      ...base,
      eventId: `click-${i}`,
      kind: 'event',
      type: 'click',
      anonymousId: anon(i),
      profileKey: anon(i),
      target: { type: 'product', id: `p-${i}` },
      tags: [],
    } as TopicMessage);
    messages.push({
      ...base,
      eventId: `identify-${i}`,
      kind: 'identify',
      userId: USER,
      anonymousId: anon(i),
      profileKey: USER,
      traits: { step: i },
    });
  }
  return messages;
}

async function refused(registry: Registry, name: string): Promise<number> {
  const values = (await registry.getSingleMetric(name)!.get()).values;
  return values.filter((v) => v.labels.reason === 'merged_id_cap').reduce((s, v) => s + v.value, 0);
}

describe(`the merged-id cap (MAX_MERGED_IDS=${CAP}) in both stores`, () => {
  let box: Sandbox;
  let redis: Redis;
  let pool: Pool;
  const scorerMetrics = createMetrics('scorer');
  const segmenterMetrics = createMetrics('segmenter');
  const closers: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    const sandbox = await storeSandbox('test-merged-id-cap');
    ({ box, pool, redis } = sandbox);
    closers.push(() => sandbox.close());
    const env = { ...box.env, MAX_MERGED_IDS: String(CAP) };
    const producer = box.kafka.producer();
    await producer.connect();
    const segmenter = createSegmenter(segmenterConfig(env), {
      kafka: box.kafka,
      pool,
      producer,
      log: silentLog,
      metrics: segmenterMetrics,
    });
    const scorer = createScorerConsumer(scorerConfig(env), {
      kafka: box.kafka,
      redis,
      pool,
      log: silentLog,
      metrics: scorerMetrics,
    });
    await segmenter.start();
    await scorer.start();
    closers.push(
      () => producer.disconnect(),
      () => segmenter.stop(),
      () => scorer.stop(),
    );
    await produceMessages(box.kafka, box.env.EVENTS_TOPIC!, stream());
    await consumed(box.kafka, box.env.EVENTS_TOPIC!, [box.env.SCORER_GROUP!, box.env.SEGMENTER_GROUP!]);
  }, 120_000);

  afterAll(async () => {
    for (const close of closers.reverse()) await close();
  }, 60_000);

  const merged = Array.from({ length: CAP }, (_, i) => anon(i)).sort();
  const refusedAt = Array.from({ length: ANONS - CAP }, (_, i) => CAP + i);
  const refusedIds = refusedAt.map(anon);

  it('merges the first links up to the cap in Postgres and in Redis, the same ids', async () => {
    const { rows } = await pool.query<{ id: string }>(
      'SELECT id FROM identities WHERE profile_key = $1 AND id <> $1 ORDER BY id',
      [USER],
    );
    expect(rows.map((r) => r.id)).toEqual(merged);
    const k = keys(box.env.REDIS_PREFIX!);
    expect((await redis.smembers(k.person(USER).merged)).sort()).toEqual(merged);
    for (const id of refusedIds) {
      expect(await redis.get(k.person(id).alias)).toBeNull();
      const { rows: own } = await pool.query<{ profile_key: string }>(
        'SELECT profile_key FROM identities WHERE id = $1',
        [id],
      );
      expect(own).toEqual([{ profile_key: id }]);
    }
  });

  it('counts every refused link in both services', async () => {
    expect(await refused(scorerMetrics, 'scorer_links_refused_total')).toBe(ANONS - CAP);
    expect(await refused(segmenterMetrics, 'segmenter_links_refused_total')).toBe(ANONS - CAP);
  });

  it('keeps each refused id a person of its own, with its interests and facts; the user has the merged ones', async () => {
    const k = keys(box.env.REDIS_PREFIX!);
    const clicks = async (key: string) =>
      (
        await pool.query<{ n: number }>(
          "SELECT n::int AS n FROM event_counts WHERE profile_key = $1 AND type = 'click'",
          [key],
        )
      ).rows[0]?.n ?? 0;
    const tagsOf = async (id: string) => [...(await readStoredInterests(redis, k, [id])).get(id)!.keys()].sort();
    for (const i of refusedAt) {
      expect(await tagsOf(anon(i))).toEqual([`product:p-${i}`]);
      expect(await clicks(anon(i))).toBe(1);
    }
    expect(await tagsOf(USER)).toEqual(merged.map((_, i) => `product:p-${i}`));
    expect(await clicks(USER)).toBe(CAP);
    // a refused identify's other effect (its traits) still applies: the last one's traits are the user's
    const { rows } = await pool.query<{ traits: Record<string, unknown> }>(
      'SELECT traits FROM people WHERE profile_key = $1',
      [USER],
    );
    expect(rows[0]?.traits).toEqual({ step: ANONS - 1 });
  });
});
