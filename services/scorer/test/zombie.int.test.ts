import type { Consumer, ConsumerConfig, Kafka } from 'kafkajs';
import { keys } from '@pstream/interest-store';
import { createPool, createRedis, type Pool, type Redis } from '@pstream/platform';
import { migrate } from '@pstream/profile-store';
import { createSandbox, type Sandbox, silentLog, waitFor } from '@pstream/testkit';
import { appliedCount, generateStream, produceEvents, storedScores } from '@pstream/testkit/streams';
import { loadConfig, scoringParams, type ScorerConfig } from '../src/config';
import { createScorerConsumer } from '../src/processor';
import { expectSameScores, modelScores } from './support';

const DAY = 86_400_000;

/** What one consumer of the group did, from kafkajs' own instrumentation events. */
type Member = { consumer: Consumer; joins: number[][]; commits: unknown[]; requests: string[]; crashes: unknown[] };

/**
 * The same Kafka, whose consumers are created with `overrides` (the scorer's BatchConsumer sets
 * its own session timeout) and watched: every group join with its partitions, every commit that
 * succeeded, every request answered by a broker (refused ones too), every crash.
 */
function watchedKafka(kafka: Kafka, overrides: Partial<ConsumerConfig>, members: Member[]): Kafka {
  return new Proxy(kafka, {
    get(target, prop) {
      if (prop === 'consumer')
        return (config: ConsumerConfig) => {
          const consumer = target.consumer({ ...config, ...overrides });
          const m: Member = { consumer, joins: [], commits: [], requests: [], crashes: [] };
          consumer.on(consumer.events.GROUP_JOIN, ({ payload }) =>
            m.joins.push(Object.values(payload.memberAssignment).flat()),
          );
          consumer.on(consumer.events.COMMIT_OFFSETS, ({ payload }) => m.commits.push(payload));
          consumer.on(consumer.events.REQUEST, ({ payload }) => m.requests.push(payload.apiName));
          consumer.on(consumer.events.CRASH, ({ payload }) => m.crashes.push(payload.error));
          members.push(m);
          return consumer;
        };
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/**
 * A stall between read and write: the client's first pipeline of guarded writes (GUARDED_WRITE or
 * LEAN_WRITE, interest-store scripts.ts) waits until `release()` before it is sent. The replies of every
 * pipeline of guarded writes are kept, the stalled one first.
 */
function stallingRedis(redis: Redis) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const gate = { stalled: false, released: false, replies: [] as unknown[][] };
  const client = new Proxy(redis, {
    get(target, prop) {
      if (prop === 'pipeline')
        return () => {
          const pipeline = target.pipeline();
          let guarded = 0;
          const write = pipeline.pstreamGuardedWrite.bind(pipeline);
          pipeline.pstreamGuardedWrite = ((...args: Parameters<typeof write>) => {
            guarded++;
            return write(...args);
          }) as typeof pipeline.pstreamGuardedWrite;
          const lean = pipeline.pstreamLeanWrite.bind(pipeline);
          pipeline.pstreamLeanWrite = ((...args: Parameters<typeof lean>) => {
            guarded++;
            return lean(...args);
          }) as typeof pipeline.pstreamLeanWrite;
          const exec = pipeline.exec.bind(pipeline);
          pipeline.exec = (async () => {
            if (guarded > 0 && !gate.released) {
              gate.stalled = true;
              await released;
            }
            const replies = await exec();
            if (guarded > 0) gate.replies.push((replies ?? []).map(([err, reply]) => err ?? reply));
            return replies;
          }) as typeof pipeline.exec;
          return pipeline;
        };
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return {
    client,
    gate,
    release: () => {
      gate.released = true;
      release();
    },
  };
}

describe('a zombie scorer after a rebalance, against real Kafka and Redis', () => {
  let box: Sandbox;
  let config: ScorerConfig;
  let redis: Redis;
  let pool: Pool;
  const clients: Redis[] = [];
  const stops: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    box = await createSandbox(1);
    config = loadConfig(box.env);
    redis = createRedis(config, 'test-zombie');
    // the suppression list of erasures lives in the schema
    pool = createPool(config.DATABASE_URL, config.PG_SCHEMA, 'test-zombie', 2);
    await migrate(pool, config.PG_SCHEMA);
  }, 60_000);

  afterAll(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    for (const c of clients) c.disconnect();
    redis.disconnect();
    await pool?.end();
    await box?.cleanup();
  }, 60_000);

  it('cannot overwrite the new owner’s states nor commit the lost partition, and every event counts once', async () => {
    const now = Date.now();
    const { events, people } = generateStream(41, 30, now - 20 * DAY, now - 3_600_000);
    // per person, the older half of their events first; the newer half comes once the zombie is stalled
    const byPerson = new Map<string, Record<string, unknown>[]>();
    for (const e of events) {
      const id = String(e.userId ?? e.anonymousId);
      byPerson.set(id, [...(byPerson.get(id) ?? []), e]);
    }
    const older = [...byPerson.values()].flatMap((list) => list.slice(0, Math.ceil(list.length / 2)));
    const newer = [...byPerson.values()].flatMap((list) => list.slice(Math.ceil(list.length / 2)));
    const first = await produceEvents(box.kafka, config.EVENTS_TOPIC, older);

    // A: the one member of the group, with the broker's shortest session so that, stalled, it is dropped in seconds
    const members: Member[] = [];
    const zombieRedis = stallingRedis(createRedis(config, 'test-zombie-a'));
    clients.push(zombieRedis.client);
    const a = createScorerConsumer(config, {
      kafka: watchedKafka(box.kafka, { sessionTimeout: 6_000, heartbeatInterval: 500 }, members),
      redis: zombieRedis.client,
      pool,
      log: silentLog,
    });
    await a.start();
    stops.push(() => a.stop());
    const zombie = members[0]!;
    await waitFor('A to stall between its read and its guarded write', async () =>
      zombieRedis.gate.stalled ? true : undefined,
    );
    expect(zombie.joins).toEqual([[0]]);

    // B joins; A, stalled, sends no heartbeat, its session ends, and the partition moves to B,
    // which applies A's chunk again from the committed offset, and then the newer events
    const second = await produceEvents(box.kafka, config.EVENTS_TOPIC, newer);
    const messages = [...first, ...second];
    const unique = new Set(messages.map((m) => `${m.source}|${m.eventId}@${m.profileKey}`)).size;
    const bRedis = createRedis(config, 'test-zombie-b');
    clients.push(bRedis);
    const b = createScorerConsumer(config, {
      kafka: watchedKafka(box.kafka, {}, members),
      redis: bRedis,
      pool,
      log: silentLog,
    });
    await b.start();
    stops.push(() => b.stop());
    const owner = members[1]!;
    await waitFor(
      'B to apply every event',
      async () => ((await appliedCount(redis, config.REDIS_PREFIX, people)) === unique ? true : undefined),
      60_000,
    );
    const admin = box.kafka.admin();
    await admin.connect();
    try {
      const end = (await admin.fetchTopicOffsets(config.EVENTS_TOPIC))[0]!.high;
      const committed = async () =>
        (await admin.fetchOffsets({ groupId: config.SCORER_GROUP, topics: [config.EVENTS_TOPIC] }))[0]!.partitions[0]!
          .offset;
      await waitFor('B to commit the end of the partition', async () =>
        (await committed()) === end ? true : undefined,
      );
      expect(owner.joins[0]).toEqual([0]);
      expect(zombieRedis.gate.replies).toEqual([]); // A is still stalled, its stale writes unsent
      const k = keys(config.REDIS_PREFIX);
      const states = async () => Promise.all(people.map((p) => redis.getBuffer(k.person(p).state)));
      const ownersStates = await states();

      // A wakes up: its chunk's guarded writes carry states read before B's, its commit is for a partition it lost
      const joinsBefore = zombie.joins.length;
      const sentBefore = zombie.requests.length;
      zombieRedis.release();
      await waitFor(
        'A to find its membership gone and join the group again',
        async () => (zombie.joins.length > joinsBefore || zombie.crashes.length > 0 ? true : undefined),
        60_000,
      );
      const [stalled, ...later] = zombieRedis.gate.replies;
      // every guarded write of the stalled pipeline was refused (0: the version changed), none landed since
      expect(stalled!.length).toBeGreaterThan(0);
      expect(stalled!.every((reply) => reply === 0)).toBe(true);
      expect(later.flat().filter((reply) => reply === 1)).toEqual([]);
      expect(await states()).toEqual(ownersStates);
      // A did try to commit its chunk (kafkajs commits on the way out of a failed batch) and was refused:
      // no offset of A ever committed, the group's position is still B's, the end of the partition
      expect(zombie.requests.slice(sentBefore)).toContain('OffsetCommit');
      expect(zombie.crashes).toEqual([]);
      expect(zombie.commits).toEqual([]);
      expect(await committed()).toBe(end);
    } finally {
      await admin.disconnect();
    }
    expect(await appliedCount(redis, config.REDIS_PREFIX, people)).toBe(unique);
    expectSameScores(
      await storedScores(redis, config.REDIS_PREFIX, people),
      modelScores(messages, scoringParams(config)),
    );
  }, 120_000);
});
