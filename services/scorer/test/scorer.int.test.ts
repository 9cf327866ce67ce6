import { keys, readWholeTagIndex, tagScoresOf, writeCatalog } from '@pstream/interest-store';
import { createRedis, scanKeys, type Redis } from '@pstream/platform';
import { buildApp as buildQuery } from '@pstream/query-api/app';
import { loadConfig as queryConfig } from '@pstream/query-api/config';
import { createPool, createMetrics, type Pool } from '@pstream/platform';
import { migrate } from '@pstream/profile-store';
import { createSandbox, prng, produceRaw, type Sandbox, silentLog, waitFor } from '@pstream/testkit';
import { appliedCount, generateStream, produceEvents, storedScores } from '@pstream/testkit/streams';
import { loadConfig, scoringParams, type ScorerConfig } from '../src/config';
import { createScorerConsumer } from '../src/processor';
import { rebuild } from '../src/rebuild';
import { expectSameScores, modelScores } from './support';

const DAY = 86_400_000;

/** The per-tag index, read back whole: tag → person → stored score. */
async function readTagIndex(redis: Redis, prefix: string): Promise<Map<string, Map<string, number>>> {
  return readWholeTagIndex(redis, keys(prefix));
}

/** The per-tag index holds exactly every person's stored score in every tag they have, and no one else. */
async function expectIndexMatches(
  redis: Redis,
  prefix: string,
  stored: Map<string, Map<string, number>>,
): Promise<void> {
  const want = new Map<string, Map<string, number>>();
  for (const [person, tags] of stored)
    for (const [tag, score] of tags) want.set(tag, (want.get(tag) ?? new Map()).set(person, score));
  const got = await readTagIndex(redis, prefix);
  for (const [tag, m] of got) if (m.size === 0) got.delete(tag);
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [tag, m] of want) expect(Object.fromEntries(got.get(tag)!)).toEqual(Object.fromEntries(m));
}

describe('the scorer against real Kafka and Redis', () => {
  let box: Sandbox;
  let config: ScorerConfig;
  let redis: Redis;
  let pool: Pool;
  const stops: (() => Promise<unknown>)[] = [];

  async function startScorer(overrides: Partial<NodeJS.ProcessEnv> = {}) {
    const c = loadConfig({ ...box.env, ...overrides });
    const consumer = createScorerConsumer(c, { kafka: box.kafka, redis, pool, log: silentLog });
    await consumer.start();
    stops.push(() => consumer.stop());
    return consumer;
  }

  beforeAll(async () => {
    box = await createSandbox(4);
    config = loadConfig(box.env);
    redis = createRedis(config, 'test-scorer');
    // the suppression list of erasures lives in the schema
    pool = createPool(config.DATABASE_URL, config.PG_SCHEMA, 'test-scorer', 2);
    await migrate(pool, config.PG_SCHEMA);
  }, 60_000);

  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
    // the second prefix and group of the two-scorer test
    for await (const batch of scanKeys(redis, `${config.REDIS_PREFIX}*`, 500)) await redis.del(...batch);
    const admin = box.kafka.admin();
    await admin.connect();
    await admin.deleteGroups([`${config.SCORER_GROUP}-pair`]).catch(() => undefined);
    await admin.disconnect();
    redis.disconnect();
    await pool?.end();
    await box?.cleanup();
  }, 60_000);

  it('one scorer, two scorers in one group and a rebuild all give the pure model’s scores', async () => {
    const now = Date.now();
    const { events, people } = generateStream(11, 120, now - 20 * DAY, now - 3_600_000);
    await writeCatalog(redis, keys(config.REDIS_PREFIX), 'product:p-0', ['category:catalogued']);
    const messages = await produceEvents(box.kafka, config.EVENTS_TOPIC, events);
    const catalog = new Map([['product:p-0', ['category:catalogued']]]);
    const want = modelScores(messages, scoringParams(config), catalog);
    const unique = new Set(messages.map((m) => m.eventId)).size;

    await startScorer();
    const pairPrefix = `${config.REDIS_PREFIX}-pair`;
    await writeCatalog(redis, keys(pairPrefix), 'product:p-0', ['category:catalogued']);
    await startScorer({ REDIS_PREFIX: pairPrefix, SCORER_GROUP: `${config.SCORER_GROUP}-pair` });
    await startScorer({ REDIS_PREFIX: pairPrefix, SCORER_GROUP: `${config.SCORER_GROUP}-pair` });

    await waitFor(
      'one scorer applied everything',
      async () => ((await appliedCount(redis, config.REDIS_PREFIX, people)) === unique ? true : undefined),
      60_000,
    );
    await waitFor(
      'two scorers applied everything',
      async () => ((await appliedCount(redis, pairPrefix, people)) === unique ? true : undefined),
      60_000,
    );
    const one = await storedScores(redis, config.REDIS_PREFIX, people);
    expectSameScores(one, want);
    await expectIndexMatches(redis, config.REDIS_PREFIX, one);
    await expectIndexMatches(redis, pairPrefix, await storedScores(redis, pairPrefix, people));
    expectSameScores(await storedScores(redis, pairPrefix, people), want);
    // the catalog tag reached tagless events on p-0 (some person has it)
    expect([...one.values()].some((m) => m.has('category:catalogued'))).toBe(true);

    // rebuild the single scorer's prefix: same scores afterwards
    for (const stop of stops.splice(0)) await stop();
    const lines: number[] = [];
    const result = await rebuild(
      config,
      { kafka: box.kafka, redis, pool, log: silentLog },
      (p) => lines.push(p.done),
      100,
    );
    expect(result.done).toBe(result.total);
    expect(result.total).toBe(messages.length);
    expectSameScores(await storedScores(redis, config.REDIS_PREFIX, people), one, 1e-12);
    await expectIndexMatches(redis, config.REDIS_PREFIX, await storedScores(redis, config.REDIS_PREFIX, people));
  }, 90_000);

  it('scores by event time whatever order each person’s events arrive in: held-back runs and two interleaved devices', async () => {
    const now = Date.now();
    const { events, people } = generateStream(23, 80, now - 20 * DAY, now - 3_600_000);
    const rand = prng(23);
    const HOUR = 3_600_000;
    // per person: runs held back up to 36 h (event time) and sent after newer events, or two devices
    // whose events arrive up to 12 h late each; an event arrives after every event older than its time + delay
    const delays = new Map<string, number>();
    const byPerson = new Map<string, Record<string, unknown>[]>();
    for (const e of events) {
      const id = String(e.userId ?? e.anonymousId);
      byPerson.set(id, [...(byPerson.get(id) ?? []), e]);
    }
    for (const [i, list] of [...byPerson.values()].entries()) {
      let delay = 0;
      const device = [rand() * 12 * HOUR, rand() * 12 * HOUR];
      list.forEach((e, j) => {
        if (i % 2 === 0) {
          if (rand() < 0.25) delay = rand() < 0.5 ? 0 : rand() * 36 * HOUR;
          delays.set(String(e.eventId), delay);
        } else delays.set(String(e.eventId), device[j % 2]!);
      });
    }
    const arrival = [...events].sort(
      (a, b) =>
        Date.parse(String(a.occurredAt)) +
        delays.get(String(a.eventId))! -
        (Date.parse(String(b.occurredAt)) + delays.get(String(b.eventId))!),
    );
    await writeCatalog(redis, keys(config.REDIS_PREFIX), 'product:p-0', ['category:catalogued']);
    const messages = await produceEvents(box.kafka, config.EVENTS_TOPIC, arrival);
    // the time-sorted stream (same times in arrival order), through the pure model
    const sorted = [...messages].sort((a, b) => Date.parse(a.occurredAt) - Date.parse(b.occurredAt));
    const want = modelScores(sorted, scoringParams(config), new Map([['product:p-0', ['category:catalogued']]]));
    expect(messages.map((m) => m.eventId)).not.toEqual(sorted.map((m) => m.eventId));
    const metrics = createMetrics('scorer');
    const consumer = createScorerConsumer(config, { kafka: box.kafka, redis, pool, log: silentLog, metrics });
    await consumer.start();
    stops.push(() => consumer.stop());
    const unique = new Set(messages.map((m) => m.eventId)).size;
    await waitFor(
      'every event applied',
      async () => ((await appliedCount(redis, config.REDIS_PREFIX, people)) === unique ? true : undefined),
      60_000,
    );
    const got = await storedScores(redis, config.REDIS_PREFIX, people);
    expectSameScores(got, want);
    const late = await metrics.getSingleMetricAsString('scorer_late_events_total');
    expect(late).toMatch(/outcome="reordered"[^}]*} [1-9]/);
    expect(late).not.toMatch(/outcome="beyond_window"/);
  }, 90_000);

  it('counts the same event delivered twice once, sends unusable messages to the DLQ and carries on, and gives tagless events their catalog tags', async () => {
    await startScorer();
    const k = keys(config.REDIS_PREFIX);
    await writeCatalog(redis, k, 'product:cat-1', ['category:bags', 'brand:acme']);
    const occurredAt = new Date(Date.now() - DAY).toISOString();
    const share = {
      eventId: 'twice',
      type: 'share',
      userId: 'u-twice',
      occurredAt,
      target: { type: 'product', id: 'x' },
      tags: ['style:casual'],
    };
    await produceEvents(box.kafka, config.EVENTS_TOPIC, [share]);
    await produceRaw(box.kafka, config.EVENTS_TOPIC, [
      { key: 'u-twice', value: '{not json' },
      { key: 'u-twice', value: JSON.stringify({ v: 1, kind: 'event' }) },
    ]);
    await produceEvents(box.kafka, config.EVENTS_TOPIC, [
      share,
      { eventId: 'tagless', type: 'click', userId: 'u-twice', occurredAt, target: { type: 'product', id: 'cat-1' } },
    ]);
    const scores = await waitFor('both events applied', async () => {
      const s = (await storedScores(redis, config.REDIS_PREFIX, ['u-twice'])).get('u-twice')!;
      return s.has('brand:acme') ? s : undefined;
    });
    const factor =
      2 ** ((Date.parse(occurredAt) - Date.parse(config.DECAY_LANDMARK)) / (config.DECAY_HALF_LIFE_DAYS * DAY));
    expect(scores.get('style:casual')).toBeCloseTo(3 * factor, 9); // one share visit: 1 + 2, once
    expect(scores.get('category:bags')).toBeCloseTo(factor, 9);
    expect(scores.get('product:cat-1')).toBeCloseTo(factor, 9);
    const dlq = box.kafka.consumer({ groupId: `${box.id}-dlq-reader` });
    await dlq.connect();
    await dlq.subscribe({ topic: config.DLQ_TOPIC, fromBeginning: true });
    const reasons: string[] = [];
    await dlq.run({
      eachMessage: async ({ message }) => void reasons.push(JSON.parse(message.value!.toString()).reason),
    });
    await waitFor('two dead letters', async () => (reasons.length >= 2 ? true : undefined));
    await dlq.disconnect();
    expect(reasons[0]).toMatch(/not JSON/);
    expect(reasons[1]).toMatch(/invalid message/);
  }, 60_000);

  it('merges an anonymous profile into the user on identify, and reads the anonymous id as the user', async () => {
    await startScorer();
    const t = new Date(Date.now() - DAY).toISOString();
    await produceEvents(box.kafka, config.EVENTS_TOPIC, [
      {
        eventId: 'm1',
        type: 'click',
        anonymousId: 'dev-merge',
        occurredAt: t,
        target: { type: 'product', id: 'm' },
        tags: ['category:dress'],
      },
    ]);
    await waitFor('anonymous click applied', async () =>
      (await appliedCount(redis, config.REDIS_PREFIX, ['dev-merge'])) === 1 ? true : undefined,
    );
    const identify = {
      v: 1,
      kind: 'identify',
      eventId: 'id-1',
      source: 'test',
      userId: 'u-merge',
      anonymousId: 'dev-merge',
      profileKey: 'u-merge',
      occurredAt: t,
      receivedAt: t,
      traits: {},
    };
    const placeholder = {
      ...identify,
      eventId: 'id-2',
      userId: 'u-other',
      profileKey: 'u-other',
      anonymousId: 'anonymous',
    };
    await produceRaw(box.kafka, config.EVENTS_TOPIC, [
      { key: 'u-merge', value: JSON.stringify(identify) },
      { key: 'u-other', value: JSON.stringify(placeholder) },
    ]);
    await produceEvents(box.kafka, config.EVENTS_TOPIC, [
      {
        eventId: 'u1',
        type: 'follow',
        userId: 'u-merge',
        occurredAt: t,
        target: { type: 'shop', id: 's' },
        tags: ['category:dress'],
      },
      {
        eventId: 'm2',
        type: 'dwell',
        dwellMs: 61_000,
        anonymousId: 'dev-merge',
        occurredAt: t,
        target: { type: 'product', id: 'm' },
      },
    ]);
    const qCfg = queryConfig(box.env);
    const pool = createPool(qCfg.DATABASE_URL, qCfg.PG_SCHEMA, 'test-query');
    const query = await buildQuery(qCfg, {
      log: silentLog,
      redis,
      pool,
      checks: [],
      metrics: createMetrics('query-api'),
    });
    try {
      const factor = 2 ** ((Date.parse(t) - Date.parse(config.DECAY_LANDMARK)) / (config.DECAY_HALF_LIFE_DAYS * DAY));
      const body = await waitFor('merged interests', async () => {
        const res = await query.inject({
          method: 'GET',
          url: '/v1/profiles/dev-merge/interests?dimension=category',
          headers: { authorization: 'Bearer dev-api-token' },
        });
        const b = res.json() as { interests: { tag: string; score: number }[]; computedAt: string };
        const dress = b.interests.find((i) => i.tag === 'category:dress');
        // the later anonymous dwell joined the anonymous click's visit on the user: 1 × 2, plus the follow 3
        return dress &&
          Math.abs(
            dress.score /
              2 **
                (-(Date.parse(b.computedAt) - Date.parse(config.DECAY_LANDMARK)) /
                  (config.DECAY_HALF_LIFE_DAYS * DAY)) -
              5 * factor,
          ) <
            1e-9 * 5 * factor
          ? b
          : undefined;
      });
      expect(body.interests.map((i) => i.tag)).toEqual(['category:dress']);
      const user = await query.inject({
        method: 'GET',
        url: '/v1/profiles/u-merge/interests?limit=200',
        headers: { authorization: 'Bearer dev-api-token' },
      });
      expect((user.json() as { interests: { tag: string }[] }).interests.map((i) => i.tag).sort()).toEqual([
        'category:dress',
        'product:m',
        'shop:s',
      ]);
      // the per-tag index follows the merge: the anonymous id left it, the user holds the merged score
      const userDress = (await storedScores(redis, config.REDIS_PREFIX, ['u-merge']))
        .get('u-merge')!
        .get('category:dress')!;
      const [anonymousDress, mergedDress] = await tagScoresOf(redis, keys(config.REDIS_PREFIX), 'category:dress', [
        'dev-merge',
        'u-merge',
      ]);
      expect(anonymousDress).toBeNull();
      expect(mergedDress).toBe(userDress);
      expect(await redis.get(`${config.REDIS_PREFIX}:p:{anonymous}:alias`)).toBeNull();
      expect(await redis.get(`${config.REDIS_PREFIX}:p:{u-other}:alias`)).toBeNull();
      const bad = await query.inject({
        method: 'GET',
        url: '/v1/profiles/u-merge/interests?limit=201',
        headers: { authorization: 'Bearer dev-api-token' },
      });
      expect(bad.statusCode).toBe(400);
    } finally {
      await query.close();
      await pool.end();
    }
  }, 60_000);
});
