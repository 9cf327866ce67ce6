/**
 * "Done means" of issue 26 (docs/privacy.md): a person with events on every topic — the events
 * topic through ingest, a dead letter of each consumer, lifecycle transitions and an audience
 * entry — is erased; then the broker's log segment files on disk (found through the broker's own
 * `log.dirs`) hold none of their ids, trait values, tags or target ids, and nothing of theirs
 * opens with the keys any more; a full scorer rebuild and a segmenter replay into a fresh schema
 * give everyone else exactly the scores and facts they had, and the erased person stays 404.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { buildApp as buildIngest } from '@pstream/ingest/app';
import { loadConfig as ingestConfig } from '@pstream/ingest/config';
import { KafkaPublisher } from '@pstream/ingest/publisher';
import { keys as redisKeys, readStoredInterests } from '@pstream/interest-store';
import {
  createKeyring,
  createMetrics,
  createPool,
  createRedis,
  loadKeyringConfig,
  type Keyring,
  type Pool,
  type Redis,
} from '@pstream/platform';
import { migrate } from '@pstream/profile-store';
import { buildApp as buildQuery } from '@pstream/query-api/app';
import { loadConfig as queryConfig } from '@pstream/query-api/config';
import { loadConfig as scorerConfig } from '@pstream/scorer/config';
import { createScorerConsumer } from '@pstream/scorer/processor';
import { rebuild } from '@pstream/scorer/rebuild';
import { loadConfig as segmenterConfig } from '@pstream/segmenter/config';
import { createSegmenter } from '@pstream/segmenter/processor';
import type { FastifyInstance } from 'fastify';
import { ConfigResourceTypes, type Kafka } from 'kafkajs';
import { consumed, createSandbox, type Sandbox, silentLog, testId, waitFor } from '@pstream/testkit';

const WRITE = { 'x-write-key': 'dev-write-key' };
const AUTH = { authorization: 'Bearer dev-api-token' };
const DAY = 86_400_000;
// Distinctive strings, so a hit in a segment file can only be this person's data.
const VICTIM = 'u-victim-7f3a9';
const VICTIM_ANON = 'a-victim-c21e8';
const SECRET = {
  city: 'Xiangcheng-victim-city',
  trait: 'victim-secret-trait-value',
  product: 'p-victim-product-5512',
  shop: 's-victim-shop-7781',
  tag: 'style:victim-gothic',
  order: 'o-victim-order-9',
};
const OTHERS = Array.from({ length: 8 }, (_, i) => `u-other-${i}`);

/**
 * The directories the broker keeps its partitions in: `log.dirs` (else `log.dir`) from the broker's own configuration.
 */
async function brokerLogDirs(kafka: Kafka): Promise<string[]> {
  const override = process.env.KAFKA_LOG_DIRS;
  if (override) return override.split(',');
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { brokers } = await admin.describeCluster();
    const dirs: string[] = [];
    for (const b of brokers) {
      const { resources } = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: ConfigResourceTypes.BROKER, name: String(b.nodeId) }],
      });
      const entries = resources[0]?.configEntries ?? [];
      const value =
        entries.find((e) => e.configName === 'log.dirs')?.configValue ??
        entries.find((e) => e.configName === 'log.dir')?.configValue;
      if (value) dirs.push(...value.split(','));
    }
    const local = dirs.filter((d) => existsSync(d));
    if (local.length === 0) {
      throw new Error(
        `the broker's log.dirs (${dirs.join(', ') || 'none reported'}) are not on this machine; set KAFKA_LOG_DIRS to where they are mounted`,
      );
    }
    return local;
  } finally {
    await admin.disconnect();
  }
}

/** Every file of every partition of `topics` under the log dirs, as bytes. */
async function segmentFiles(dirs: string[], topics: string[]): Promise<{ file: string; bytes: Buffer }[]> {
  const out: { file: string; bytes: Buffer }[] = [];
  for (const dir of dirs) {
    for (const entry of await readdir(dir)) {
      if (!topics.some((t) => entry.startsWith(`${t}-`) && /^\d+$/.test(entry.slice(t.length + 1)))) continue;
      for (const f of await readdir(path.join(dir, entry))) {
        const file = path.join(dir, entry, f);
        out.push({ file, bytes: await readFile(file) });
      }
    }
  }
  return out;
}

/** Which of `needles` appear in the files, and where (as UTF-8 bytes: how Kafka stores JSON). */
function hits(files: { file: string; bytes: Buffer }[], needles: string[]): string[] {
  return files.flatMap(({ file, bytes }) =>
    needles.filter((n) => bytes.includes(Buffer.from(n, 'utf8'))).map((n) => `${n} in ${file}`),
  );
}

/** Every value of every partition of `topic`, read from the beginning by a throw-away group. */
async function readTopic(kafka: Kafka, topic: string): Promise<{ key: string | null; value: Buffer | null }[]> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const total = ends.reduce((s, p) => s + Number(p.high) - Number(p.low), 0);
  const out: { key: string | null; value: Buffer | null }[] = [];
  if (total === 0) return out;
  const groupId = `test-read-${testId()}`;
  const consumer = kafka.consumer({ groupId });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => void out.push({ key: message.key?.toString() ?? null, value: message.value }),
  });
  try {
    await waitFor(`all ${total} records of ${topic}`, async () => (out.length >= total ? true : undefined), 60_000);
  } finally {
    await consumer.disconnect();
    const cleanup = kafka.admin();
    await cleanup.connect();
    await cleanup.deleteGroups([groupId]).catch(() => undefined);
    await cleanup.disconnect();
  }
  return out;
}

describe("crypto-shredding: an erased person is unreadable everywhere, Kafka's log segments included", () => {
  let box: Sandbox;
  let env: NodeJS.ProcessEnv;
  let pool: Pool;
  let redis: Redis;
  let keyring: Keyring;
  let ingest: FastifyInstance;
  let query: FastifyInstance;
  const closers: (() => Promise<unknown>)[] = [];
  let topics: string[];
  let stopScorer: () => Promise<void>;
  let stopSegmenter: () => Promise<void>;

  beforeAll(async () => {
    box = await createSandbox(3);
    env = {
      ...box.env,
      SEGMENTER_SWEEP_INTERVAL_MS: '300',
      SEGMENTER_AUDIENCE_FULL_EVERY_MS: '0',
      SEGMENTER_OUTBOX_POLL_MS: '200',
    };
    topics = [env.EVENTS_TOPIC!, env.DLQ_TOPIC!, env.LIFECYCLE_TOPIC!, env.AUDIENCES_TOPIC!];
    pool = createPool(process.env.DATABASE_URL!, env.PG_SCHEMA!, 'test-shred', 6);
    await migrate(pool, env.PG_SCHEMA!);
    closers.push(() => pool.end());
    keyring = createKeyring(loadKeyringConfig(env), pool);
    redis = createRedis({ REDIS_URL: process.env.REDIS_URL! }, 'test-shred');
    closers.push(async () => redis.disconnect());

    const iCfg = ingestConfig(env);
    const publisher = new KafkaPublisher({
      kafka: box.kafka,
      topic: iCfg.EVENTS_TOPIC,
      log: silentLog,
      timeoutMs: iCfg.PRODUCE_TIMEOUT_MS,
      breakerMs: iCfg.KAFKA_BREAKER_MS,
      keyring,
    });
    ingest = await buildIngest(iCfg, { log: silentLog, publisher, checks: [], metrics: createMetrics('ingest') });
    closers.push(
      () => publisher.stop(),
      () => ingest.close(),
    );

    const scorer = createScorerConsumer(scorerConfig(env), { kafka: box.kafka, redis, pool, log: silentLog });
    await scorer.start();
    stopScorer = () => scorer.stop();
    closers.push(stopScorer);
    const producer = box.kafka.producer();
    await producer.connect();
    const segmenter = createSegmenter(segmenterConfig(env), {
      kafka: box.kafka,
      pool,
      producer,
      redis,
      log: silentLog,
    });
    await segmenter.start();
    stopSegmenter = () => segmenter.stop();
    closers.push(stopSegmenter, () => producer.disconnect());
    query = await buildQuery(queryConfig(env), {
      log: silentLog,
      redis,
      pool,
      checks: [],
      metrics: createMetrics('query-api'),
    });
    closers.push(() => query.close());
  }, 120_000);

  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await box?.cleanup();
  }, 60_000);

  const post = async (url: string, payload: Record<string, unknown>) => {
    const res = await ingest.inject({ method: 'POST', url, headers: WRITE, payload });
    expect(res.statusCode).toBe(202);
  };
  const get = (url: string) => query.inject({ method: 'GET', url, headers: AUTH });

  it('after the erasure no segment file and no key reveals them; rebuild and replay give everyone else exactly what they had', async () => {
    const at = (days: number, i = 0) => new Date(Date.now() - days * DAY + i * 1000).toISOString();
    // A saved audience the victim (and only they) enters: its entry goes to profile.audiences.v1.
    const audience = await query.inject({
      method: 'POST',
      url: '/v1/audiences',
      headers: AUTH,
      payload: { name: 'city', rule: { trait: { name: 'city', op: 'eq', value: SECRET.city } } },
    });
    expect(audience.statusCode).toBe(201);

    // The victim: anonymous browsing, an identify with traits (a merge), a follow, an order.
    await post('/v1/events', {
      events: [
        {
          type: 'click',
          anonymousId: VICTIM_ANON,
          occurredAt: at(3),
          target: { type: 'product', id: SECRET.product },
          tags: [SECRET.tag],
        },
        { type: 'follow', anonymousId: VICTIM_ANON, occurredAt: at(3, 1), target: { type: 'shop', id: SECRET.shop } },
      ],
    });
    await post('/v1/identify', {
      userId: VICTIM,
      anonymousId: VICTIM_ANON,
      occurredAt: at(2),
      traits: { city: SECRET.city, nickname: SECRET.trait },
    });
    await post('/v1/events', {
      events: [
        {
          type: 'purchase',
          userId: VICTIM,
          occurredAt: at(1),
          target: { type: 'product', id: SECRET.product },
          tags: [SECRET.tag],
          amount: 4321.5,
          currency: 'CNY',
          orderId: SECRET.order,
        },
        {
          type: 'like',
          anonymousId: VICTIM_ANON,
          occurredAt: at(1, 1),
          target: { type: 'product', id: SECRET.product },
          tags: [SECRET.tag],
        },
      ],
    });
    // Everyone else.
    await post('/v1/events', {
      events: OTHERS.flatMap((u, i) => [
        { type: 'follow', userId: u, occurredAt: at(4, i), target: { type: 'shop', id: 's-common' } },
        {
          type: 'click',
          userId: u,
          occurredAt: at(2, i),
          target: { type: 'product', id: `p-${i % 3}` },
          tags: ['category:dress'],
        },
        ...(i % 2
          ? [
              {
                type: 'purchase',
                userId: u,
                occurredAt: at(1, i),
                target: { type: 'product', id: `p-${i % 3}` },
                amount: 10 + i,
                currency: 'CNY',
              },
            ]
          : []),
      ]),
    });
    await post('/v1/identify', { userId: OTHERS[0], traits: { city: 'Hangzhou' } });
    // A producer's bug on the victim's key: both consumers dead-letter it, sealed for the victim.
    const bad = await keyring.seal([
      {
        key: VICTIM,
        value: JSON.stringify({
          v: 1,
          kind: 'event',
          type: 'teleport',
          userId: VICTIM,
          profileKey: VICTIM,
          target: { type: 'product', id: SECRET.product },
        }),
      },
    ]);
    const p = box.kafka.producer();
    await p.connect();
    await p.send({ topic: env.EVENTS_TOPIC!, acks: -1, messages: bad });
    await p.disconnect();

    await consumed(box.kafka, env.EVENTS_TOPIC!, [env.SCORER_GROUP!, env.SEGMENTER_GROUP!], 120_000);
    const victimSubject = keyring.subjectOf(VICTIM);
    // The victim has something on every topic, and it opens with the keys.
    const opened = async (topic: string, k: Keyring) => {
      const records = (await readTopic(box.kafka, topic)).filter(
        (r) => r.key === victimSubject || r.key === keyring.subjectOf(VICTIM_ANON),
      );
      return { records, opened: await k.open(records.map((r) => r.value)) };
    };
    for (const topic of topics) {
      const { opened: o } = await waitFor(
        `the victim on ${topic}`,
        async () => {
          const r = await opened(topic, keyring);
          return r.opened.some((x) => x.kind === 'opened' && x.plaintext.toString().includes(VICTIM)) ? r : undefined;
        },
        60_000,
        500,
      );
      expect(o.every((x) => x.kind === 'opened')).toBe(true);
    }
    // What everyone else has, before: stored scores (time-free forward-decay sums) and facts.
    const k = redisKeys(env.REDIS_PREFIX!);
    const scoresBefore = await readStoredInterests(redis, k, OTHERS);
    const factsOf = async (q: FastifyInstance, id: string) => {
      const body = (await q.inject({ method: 'GET', url: `/v1/profiles/${id}`, headers: AUTH })).json();
      return {
        userId: body.userId,
        anonymousIds: body.anonymousIds,
        traits: body.traits,
        stats: body.stats,
        lifecycle: body.lifecycle?.stage,
        tiers: body.tiers,
        follows: body.follows,
      };
    };
    const factsBefore = await Promise.all(OTHERS.map((id) => factsOf(query, id)));
    expect(factsBefore.every((f) => f.userId !== undefined && f.stats)).toBe(true);

    // The broker's segment files: found through the broker's configuration, the victim's subject
    // (the message key) is there, none of their data ever was.
    const dirs = await brokerLogDirs(box.kafka);
    const needles = [VICTIM, VICTIM_ANON, ...Object.values(SECRET)];
    const before = await segmentFiles(dirs, topics);
    expect(before.length).toBeGreaterThan(0);
    expect(hits(before, [victimSubject])).not.toEqual([]);
    expect(hits(before, needles)).toEqual([]);

    // Erase, by the anonymous id: the whole merged person goes.
    const del = await query.inject({ method: 'DELETE', url: `/v1/profiles/${VICTIM_ANON}`, headers: AUTH });
    expect(del.statusCode).toBe(202);
    await waitFor('erasure done', async () =>
      (await get(`/v1/erasures/${del.json().erasureId}`)).json().status === 'done' ? true : undefined,
    );

    // Nothing of theirs opens any more, on any topic, for a process that never saw the keys.
    const fresh = createKeyring(loadKeyringConfig(env), pool);
    for (const topic of topics) {
      const { records, opened: o } = await opened(topic, fresh);
      expect(records.length).toBeGreaterThan(0);
      expect(o.map((x) => x.kind)).toEqual(records.map(() => 'shredded'));
    }
    // Everything still readable on the four topics holds none of their data either.
    for (const topic of topics) {
      const all = await readTopic(box.kafka, topic);
      const texts = (await fresh.open(all.map((r) => r.value))).flatMap((x, i) =>
        x.kind === 'opened' ? [x.plaintext.toString()] : x.kind === 'clear' ? [all[i]!.value?.toString() ?? ''] : [],
      );
      expect(texts.filter((t) => needles.some((n) => t.includes(n)))).toEqual([]);
    }
    expect(hits(await segmentFiles(dirs, topics), needles)).toEqual([]);

    // A full scorer rebuild: everyone else gets exactly their scores back, the victim nothing.
    await stopScorer();
    const sCfg = scorerConfig(env);
    const result = await rebuild(sCfg, { kafka: box.kafka, redis, pool, log: silentLog }, () => undefined, 100);
    expect(result.done).toBe(result.total);
    const scoresAfter = await readStoredInterests(redis, k, OTHERS);
    for (const id of OTHERS) {
      const want = scoresBefore.get(id)!;
      const got = scoresAfter.get(id)!;
      expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
      for (const [tag, v] of want)
        expect(Math.abs(got.get(tag)! - v)).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(v)));
    }
    expect((await readStoredInterests(redis, k, [VICTIM, VICTIM_ANON])).get(VICTIM)?.size ?? 0).toBe(0);

    // A replay of the whole topic into a fresh schema (the same keyring): everyone else's facts
    // exactly as before; the victim's messages skipped as shredded, and they stay 404.
    await stopSegmenter();
    const replaySchema = `${env.PG_SCHEMA}_replay`;
    const replayEnv = { ...env, PG_SCHEMA: replaySchema, SEGMENTER_GROUP: `${env.SEGMENTER_GROUP}-replay` };
    const replayPool = createPool(process.env.DATABASE_URL!, replaySchema, 'test-shred-replay', 6);
    closers.push(async () => {
      await replayPool.query(`DROP SCHEMA IF EXISTS ${replaySchema} CASCADE`);
      await replayPool.end();
    });
    await migrate(replayPool, replaySchema);
    await replayPool.query(`INSERT INTO person_keys SELECT * FROM ${env.PG_SCHEMA}.person_keys`);
    const metrics = createMetrics('test-replay');
    const replayProducer = box.kafka.producer();
    await replayProducer.connect();
    const replay = createSegmenter(segmenterConfig(replayEnv), {
      kafka: box.kafka,
      pool: replayPool,
      producer: replayProducer,
      log: silentLog,
      metrics,
    });
    await replay.start();
    try {
      await consumed(box.kafka, env.EVENTS_TOPIC!, [replayEnv.SEGMENTER_GROUP], 120_000);
    } finally {
      await replay.stop();
      await replayProducer.disconnect();
    }
    const skipped = (await metrics.getSingleMetric('consumer_shredded_messages_total')!.get()).values.reduce(
      (s, v) => s + v.value,
      0,
    );
    expect(skipped).toBe(6);
    const replayQuery = await buildQuery(queryConfig(replayEnv), {
      log: silentLog,
      redis,
      pool: replayPool,
      checks: [],
      metrics: createMetrics('query-api'),
    });
    closers.push(() => replayQuery.close());
    expect(await Promise.all(OTHERS.map((id) => factsOf(replayQuery, id)))).toEqual(factsBefore);
    for (const q of [query, replayQuery]) {
      for (const id of [VICTIM, VICTIM_ANON])
        expect((await q.inject({ method: 'GET', url: `/v1/profiles/${id}`, headers: AUTH })).statusCode).toBe(404);
    }
  }, 400_000);
});
