/**
 * §6 past one machine (docs/operations.md, docs/scaling.md): two ingests, two scorers and two segmenters on a
 * three-broker Kafka
 * (RF 3, min.insync.replicas 2) and a 3+3 Redis Cluster, while the test
 *   1. SIGKILLs the broker leading the most partitions of the events topic mid-stream,
 *   2. SIGKILLs the Redis master that holds a busy person's slot (its replica takes over; the
 *      scorers WAIT for one replica per batch, so nothing acknowledged is lost with it),
 *   3. SIGKILLs a scorer and a segmenter while their groups rebalance (a third of each joins).
 * Every event is retried by the client until ingest answers 202. In the end every 202'd event
 * is counted exactly once, and interests and facts equal those of one scorer and one segmenter
 * replaying the same topic with no faults.
 *
 * `pnpm test:cluster` starts the stack (`pnpm infra:up --cluster`), runs it and stops the stack; CI runs it after
 * `npm test`, never beside it: it needs nine extra server processes and takes minutes.
 */
import { dedupeId } from '@pstream/events';
import { keys, memberDigest, readAppliedDigests, readStoredInterests } from '@pstream/interest-store';
import { createPool, createRedis, scanKeys, type Pool, type Redis } from '@pstream/platform';
import { migrate } from '@pstream/profile-store';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { loadDefaultEnv, testId, waitFor } from '@pstream/testkit';
import {
  busiestLeader,
  CLUSTER_KAFKA,
  CLUSTER_REDIS_NODES,
  createTopics,
  infraUpCluster,
  killBroker,
  masterOf,
  sigkill,
  spawnService,
  startService,
  stopService,
  waitReady,
  type Service,
} from './support';

loadDefaultEnv();

const EVENTS = Number(process.env.CLUSTER_TEST_EVENTS ?? 6000);
const PEOPLE = 150;
const BATCH = 20;
const SOURCE = 'cluster';
const TYPES = ['click', 'like', 'share', 'comment', 'favorite', 'follow', 'click', 'unfollow'] as const;
const BASE_MS = Date.parse('2026-06-01T00:00:00Z');

function person(i: number): string {
  return `c-${i % PEOPLE}`;
}

/** Event i of the stream: deterministic, so a rerun posts the same stream. */
function event(run: string, i: number) {
  const type = TYPES[i % TYPES.length]!;
  return {
    eventId: `${run}-${i}`,
    type,
    userId: person(i),
    occurredAt: new Date(BASE_MS + i * 7_000).toISOString(),
    target: { type: type === 'follow' || type === 'unfollow' ? 'shop' : 'product', id: `t-${i % 9}` },
    tags: [`category:c${i % 5}`, `brand:b${i % 3}`],
  };
}

type Figures = { accepted: number; refusedAttempts: number; faults: string[] };

describe('cluster: N instances, failover, every 202 counted once', () => {
  const id = testId();
  const live: NodeJS.ProcessEnv = {
    ...process.env,
    KAFKA_BROKERS: CLUSTER_KAFKA,
    REDIS_CLUSTER_NODES: CLUSTER_REDIS_NODES,
    EVENTS_TOPIC: `cl.${id}.events`,
    DLQ_TOPIC: `cl.${id}.dlq`,
    LIFECYCLE_TOPIC: `cl.${id}.lifecycle`,
    REDIS_PREFIX: `cl:${id}`,
    PG_SCHEMA: `cl_${id}`,
    SCORER_GROUP: `cl-${id}-scorer`,
    SEGMENTER_GROUP: `cl-${id}-segmenter`,
    WRITE_KEYS: `cl-${id}=${SOURCE}`,
    PRODUCE_TIMEOUT_MS: '5000',
    KAFKA_BREAKER_MS: '500',
    SEGMENTER_SWEEP_INTERVAL_MS: '3600000',
    REDIS_WAIT_REPLICAS: '1',
  };
  const ref: NodeJS.ProcessEnv = {
    ...live,
    REDIS_PREFIX: `clref:${id}`,
    PG_SCHEMA: `clref_${id}`,
    SCORER_GROUP: `cl-${id}-scorer-ref`,
    SEGMENTER_GROUP: `cl-${id}-segmenter-ref`,
  };
  const services: Service[] = [];
  let kafka: Kafka;
  let admin: Admin;
  let redis: Redis;
  let pool: Pool;

  beforeAll(async () => {
    kafka = new Kafka({ clientId: 'cluster-test', brokers: CLUSTER_KAFKA.split(','), logLevel: logLevel.NOTHING });
    admin = kafka.admin();
    await admin.connect();
    await createTopics(admin, [
      {
        topic: live.EVENTS_TOPIC!,
        numPartitions: 12,
        replicationFactor: 3,
        configEntries: [{ name: 'min.insync.replicas', value: '2' }],
      },
      { topic: live.DLQ_TOPIC!, numPartitions: 3, replicationFactor: 3 },
      { topic: live.LIFECYCLE_TOPIC!, numPartitions: 3, replicationFactor: 3 },
    ]);
    redis = createRedis(
      { REDIS_URL: 'redis://127.0.0.1:7101', REDIS_CLUSTER_NODES: CLUSTER_REDIS_NODES.split(',') },
      'cluster-test',
    );
    pool = createPool(process.env.DATABASE_URL!, 'public', 'cluster-test', 4);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(services.map(stopService));
    await admin
      ?.deleteTopics({ topics: [live.EVENTS_TOPIC!, live.DLQ_TOPIC!, live.LIFECYCLE_TOPIC!] })
      .catch(() => undefined);
    await admin
      ?.deleteGroups([live.SCORER_GROUP!, live.SEGMENTER_GROUP!, ref.SCORER_GROUP!, ref.SEGMENTER_GROUP!])
      .catch(() => undefined);
    await admin?.disconnect();
    if (redis) {
      for (const prefix of [live.REDIS_PREFIX!, ref.REDIS_PREFIX!]) {
        for await (const batch of scanKeys(redis, `${prefix}:*`)) await Promise.all(batch.map((k) => redis.unlink(k)));
      }
      redis.disconnect();
    }
    if (pool) {
      for (const schema of [live.PG_SCHEMA!, ref.PG_SCHEMA!])
        await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await pool.end();
    }
  }, 180_000);

  /** Distinct applied events: Σ of the people's dedupe sets in Redis, and the segmenter's rows. */
  async function applied(env: NodeJS.ProcessEnv): Promise<{ redis: number; pg: number }> {
    const people = Array.from({ length: PEOPLE }, (_, i) => person(i));
    const records = await readAppliedDigests(redis, keys(env.REDIS_PREFIX!), people);
    const { rows } = await pool
      .query<{ n: number }>(`SELECT count(*)::int AS n FROM ${env.PG_SCHEMA}.applied_events`)
      .catch(() => ({ rows: [{ n: 0 }] }));
    return { redis: [...records.values()].reduce((a, d) => a + d.size, 0), pg: rows[0]!.n };
  }

  async function groupState(group: string): Promise<string> {
    const { groups } = await admin.describeGroups([group]);
    return groups[0]?.state ?? 'Unknown';
  }

  it('SIGKILLs a leader broker, a Redis master and a consumer mid-rebalance: scores equal a single-instance replay', async () => {
    const figures: Figures = { accepted: 0, refusedAttempts: 0, faults: [] };
    const started = Date.now();
    const [ingestA, ingestB] = await Promise.all([
      startService('ingest', 'ingest-1', live),
      startService('ingest', 'ingest-2', live),
    ]);
    services.push(ingestA!, ingestB!);
    const consumers = await Promise.all([
      startService('scorer', 'scorer-1', live),
      startService('scorer', 'scorer-2', live),
      startService('segmenter', 'segmenter-1', live),
      startService('segmenter', 'segmenter-2', live),
    ]);
    services.push(...consumers);
    const [scorer1, , segmenter1] = consumers;

    // The stream: batches posted alternately to the two ingests, each retried until 202.
    const batches: number[][] = [];
    for (let i = 0; i < EVENTS; i += BATCH)
      batches.push(Array.from({ length: Math.min(BATCH, EVENTS - i) }, (_, j) => i + j));
    let next = 0;
    // The last tenth of the stream waits until the faults are done, so the last fault lands
    // mid-stream too however slowly the joiners start on a loaded machine.
    let faultsOver!: () => void;
    const faultsDone = new Promise<void>((resolve) => (faultsOver = resolve));
    const holdFrom = Math.floor(batches.length * 0.9);
    const post = async (port: number): Promise<void> => {
      for (;;) {
        const b = next++;
        if (b >= batches.length) return;
        if (b >= holdFrom) await faultsDone;
        const body = JSON.stringify({ events: batches[b]!.map((i) => event(id, i)) });
        const deadline = Date.now() + 180_000;
        for (;;) {
          const status = await fetch(`http://127.0.0.1:${port}/v1/events`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-write-key': `cl-${id}` },
            body,
          }).then(
            (r) => r.status,
            () => 0,
          );
          if (status === 202) break;
          if (status !== 503 && status !== 0 && status !== 429)
            throw new Error(`ingest answered ${status} to batch ${b}`);
          figures.refusedAttempts++;
          if (Date.now() > deadline) throw new Error(`batch ${b} not accepted within 180 s`);
          await new Promise((r) => setTimeout(r, 250));
        }
        figures.accepted += batches[b]!.length;
        await new Promise((r) => setTimeout(r, 250)); // a steady stream, so every fault lands mid-stream
      }
    };
    const atLeast = (n: number) =>
      waitFor(`${n} events accepted`, async () => (figures.accepted >= n ? true : undefined), 300_000, 50);

    const faults = (async () => {
      // 1. The broker leading the most partitions of the events topic, SIGKILLed mid-stream.
      await atLeast(EVENTS * 0.15);
      const leader = await busiestLeader(admin, live.EVENTS_TOPIC!);
      killBroker(leader.nodeId);
      figures.faults.push(
        `kafka broker ${leader.nodeId} (leader of ${leader.partitions}/12 partitions) SIGKILLed at ${figures.accepted} accepted`,
      );
      const atKill = figures.accepted;
      await waitFor(
        'the stream to go on without it',
        async () => (figures.accepted >= atKill + 10 * BATCH ? true : undefined),
        180_000,
        100,
      );
      infraUpCluster();
      figures.faults.push(`broker ${leader.nodeId} restarted at ${figures.accepted} accepted`);

      // 2. The Redis master of a busy person's slot, SIGKILLed while the scorers write to it.
      await atLeast(EVENTS * 0.35);
      const key = keys(live.REDIS_PREFIX!).person(person(0)).state;
      const master = await masterOf(key);
      process.kill(master.pid, 'SIGKILL');
      const before = (await applied(live).catch(() => ({ redis: 0 }))).redis;
      figures.faults.push(`redis master :${master.port} SIGKILLed at ${figures.accepted} accepted`);
      const promoted = await waitFor(
        'a replica to take over the slot',
        async () => {
          const now = await masterOf(key).catch(() => undefined);
          return now && now.port !== master.port ? now.port : undefined;
        },
        60_000,
        200,
      );
      figures.faults.push(`replica :${promoted} took over`);
      // The scorers WAIT for one replica per batch, so the promoted master takes writes again
      // once the old one is back as its replica.
      infraUpCluster();
      figures.faults.push(`:${master.port} back as a replica`);
      await waitFor(
        'the scorers to write again',
        async () => ((await applied(live)).redis > before + 2 * BATCH ? true : undefined),
        120_000,
        250,
      );

      // 3. A third scorer and segmenter join; during the rebalance one of each is SIGKILLed.
      await atLeast(EVENTS * 0.55);
      const joiners = await Promise.all([
        spawnService('scorer', 'scorer-3', live),
        spawnService('segmenter', 'segmenter-3', live),
      ]);
      services.push(...joiners);
      const seen = await waitFor(
        'a rebalance under way',
        async () => {
          const [a, b] = await Promise.all([groupState(live.SCORER_GROUP!), groupState(live.SEGMENTER_GROUP!)]);
          return /Rebalance/.test(a) || /Rebalance/.test(b) ? `${a}/${b}` : undefined;
        },
        120_000,
        20,
      );
      await Promise.all([sigkill(scorer1!), sigkill(segmenter1!)]);
      figures.faults.push(
        `scorer-1 and segmenter-1 SIGKILLed while the groups were ${seen} at ${figures.accepted} accepted`,
      );
      await Promise.all(joiners.map(waitReady));
    })().finally(() => faultsOver());

    await Promise.all([post(ingestA!.port), post(ingestB!.port), faults]);
    expect(figures.accepted).toBe(EVENTS);

    await waitFor(
      'every accepted event applied by the surviving instances',
      async () => {
        const n = await applied(live);
        return n.redis === EVENTS && n.pg === EVENTS ? true : undefined;
      },
      300_000,
      500,
    );

    // The same topic replayed by one scorer and one segmenter, no faults. Every message is sealed with
    // its person's key (SPEC §4.5), and the keys live beside the live stores: the replay gets a copy, as
    // docs/operations.md tells an operator replaying into a fresh schema; without one it opens nothing.
    const refPool = createPool(process.env.DATABASE_URL!, ref.PG_SCHEMA!, 'cluster-test-ref', 2);
    try {
      await migrate(refPool, ref.PG_SCHEMA!);
      await refPool.query(`INSERT INTO ${ref.PG_SCHEMA}.person_keys SELECT * FROM ${live.PG_SCHEMA}.person_keys`);
    } finally {
      await refPool.end();
    }
    const replay = await Promise.all([
      startService('scorer', 'scorer-ref', ref),
      startService('segmenter', 'segmenter-ref', ref),
    ]);
    services.push(...replay);
    await waitFor(
      'the replay to apply the whole topic',
      async () => {
        const n = await applied(ref);
        return n.redis === EVENTS && n.pg === EVENTS ? true : undefined;
      },
      300_000,
      500,
    );

    // Exactly the 202'd events, once each: the dedupe records are the posted ids (`source|eventId@profileKey`).
    const want = new Set(
      Array.from(
        { length: EVENTS },
        (_, i) => `${SOURCE}|${dedupeId({ eventId: `${id}-${i}`, profileKey: person(i) })}`,
      ),
    );
    // Redis keeps the records' digests (memberDigest)
    const members: string[] = [];
    const records = await readAppliedDigests(
      redis,
      keys(live.REDIS_PREFIX!),
      Array.from({ length: PEOPLE }, (_, i) => person(i)),
    );
    for (const digests of records.values()) members.push(...digests);
    expect(members.length).toBe(EVENTS);
    expect(new Set(members)).toEqual(new Set([...want].map(memberDigest)));
    const { rows: ids } = await pool.query<{ k: string }>(
      `SELECT source || '|' || event_id AS k FROM ${live.PG_SCHEMA}.applied_events`,
    );
    expect(new Set(ids.map((r) => r.k))).toEqual(want);

    // Interests: every person's scores equal the replay's.
    let compared = 0;
    for (let i = 0; i < PEOPLE; i++) {
      // as readers read them (the scores the person's state carries)
      const [mine, theirs] = await Promise.all(
        [live, ref].map(async (env) =>
          (await readStoredInterests(redis, keys(env.REDIS_PREFIX!), [person(i)])).get(person(i))!,
        ),
      );
      expect(mine!.size).toBeGreaterThan(0);
      expect([...mine!.keys()].sort()).toEqual([...theirs!.keys()].sort());
      for (const [tag, v] of mine!) expect(v).toBeCloseTo(theirs!.get(tag)!, 9);
      compared += mine!.size;
    }

    // Facts: the segmenter's tables equal the replay's.
    const facts = [
      'SELECT profile_key, type, n FROM %s.event_counts ORDER BY 1, 2',
      'SELECT profile_key, first_seen_at, last_active_at, purchases, monetary_total FROM %s.people ORDER BY 1',
      // `since` included: it comes from the follow history, whatever the chunking (an unfollow
      // retried through a broker failover lands after a later follow).
      'SELECT profile_key, target_type, target_id, following, since, changed_at FROM %s.follows ORDER BY 1, 2, 3',
      'SELECT source, event_id, profile_key, target_type, target_id, action, at FROM %s.follow_history ORDER BY 1, 2',
      'SELECT profile_key, day, type, target_type, target_id, n FROM %s.activity_daily ORDER BY 1, 2, 3, 4, 5',
      'SELECT profile_key, day, type, tag, n FROM %s.tag_activity_daily ORDER BY 1, 2, 3, 4',
    ];
    for (const sql of facts) {
      const [mine, theirs] = await Promise.all([live, ref].map((env) => pool.query(sql.replace('%s', env.PG_SCHEMA!))));
      expect(mine!.rows.length).toBeGreaterThan(0);
      expect(mine!.rows).toEqual(theirs!.rows);
    }
    const { rows: counted } = await pool.query<{ n: number }>(
      `SELECT sum(n)::int AS n FROM ${live.PG_SCHEMA}.event_counts`,
    );
    expect(counted[0]!.n).toBe(EVENTS);

    console.log(
      [
        `cluster test: ${EVENTS} events from ${PEOPLE} people through 2 ingests, 2+1 scorers, 2+1 segmenters in ${((Date.now() - started) / 1000).toFixed(0)} s`,
        `  ${figures.refusedAttempts} refused attempts (503 / connection) retried until 202; ${figures.accepted} accepted`,
        ...figures.faults.map((f) => `  fault: ${f}`),
        `  counted once: ${EVENTS} dedupe records in Redis, ${EVENTS} applied_events rows, Σ event_counts = ${counted[0]!.n}`,
        `  equal to the single-instance replay: ${compared} interest scores of ${PEOPLE} people, ${facts.length} fact queries`,
      ].join('\n'),
    );
  }, 1_200_000);
});
