/**
 * Erasure (docs/model.md §4.5, docs/api.md §5.7) end to end, with the real scorer and segmenter processes: a person
 * with a merged anonymous id is erased through the query API and stays gone through new events,
 * a SIGKILL of both consumers and the redelivery after it, a full `scorer:rebuild` and a replay
 * of the whole topic into Postgres with the dedupe records gone.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import path from 'node:path';
import type { TopicMessage } from '@pstream/events';
import {
  createKafka,
  createMetrics,
  createPool,
  createRedis,
  scanKeys,
  type Pool,
  type Redis,
} from '@pstream/platform';
import { migrate } from '@pstream/profile-store';
import { buildApp as buildQuery } from '@pstream/query-api/app';
import { loadConfig as queryConfig } from '@pstream/query-api/config';
import { loadConfig as scorerConfig } from '@pstream/scorer/config';
import { rebuild } from '@pstream/scorer/rebuild';
import { loadConfig as segmenterConfig } from '@pstream/segmenter/config';
import { createSegmenter } from '@pstream/segmenter/processor';
import type { FastifyInstance } from 'fastify';
import { consumed, createSandbox, produceMessages, type Sandbox, silentLog, waitFor } from '@pstream/testkit';

const ROOT = path.resolve(__dirname, '..');
const DAY = 86_400_000;
const now = Date.now();
const auth = { authorization: 'Bearer dev-api-token' };
const VICTIM = 'u-victim';
const VICTIM_ANON = 'a-victim';
const OTHERS = Array.from({ length: 12 }, (_, i) => `u-${i}`);

let n = 0;
function event(
  profile: { userId?: string; anonymousId?: string },
  type: string,
  daysAgo: number,
  target: string,
  tags: string[] = [],
): TopicMessage {
  const profileKey = profile.userId ?? profile.anonymousId!;
  const at = new Date(now - daysAgo * DAY + n).toISOString();
  return {
    v: 1,
    kind: 'event',
    eventId: `e-${n++}`,
    source: 'test',
    occurredAt: at,
    receivedAt: at,
    ...profile,
    profileKey,
    type,
    target: { type: target.split(':')[0], id: target.split(':')[1] },
    tags,
    ...(type === 'purchase' && { amount: 50, currency: 'CNY' }),
  } as TopicMessage;
}
function identify(userId: string, anonymousId: string, daysAgo: number): TopicMessage {
  const at = new Date(now - daysAgo * DAY + n).toISOString();
  return {
    v: 1,
    kind: 'identify',
    eventId: `e-${n++}`,
    source: 'test',
    occurredAt: at,
    receivedAt: at,
    userId,
    anonymousId,
    profileKey: userId,
    traits: { city: 'Hangzhou', gender: 'female' },
  };
}
/** Everything the victim does: anonymous visits, a merge, follows, purchases. */
function victimEvents(daysAgo: number): TopicMessage[] {
  return [
    event({ anonymousId: VICTIM_ANON }, 'click', daysAgo + 2, 'product:p-v', ['category:secret']),
    event({ anonymousId: VICTIM_ANON }, 'follow', daysAgo + 2, 'shop:s-victim'),
    identify(VICTIM, VICTIM_ANON, daysAgo + 1),
    event({ userId: VICTIM }, 'follow', daysAgo, 'shop:s-shared'),
    event({ userId: VICTIM }, 'purchase', daysAgo, 'product:p-v', ['category:secret']),
    event({ anonymousId: VICTIM_ANON }, 'like', daysAgo, 'product:p-v', ['category:secret']),
  ];
}
function othersEvents(daysAgo: number, perPerson: number): TopicMessage[] {
  return OTHERS.flatMap((u) => [
    event({ userId: u }, 'follow', daysAgo, 'shop:s-shared'),
    ...Array.from({ length: perPerson }, (_, i) =>
      event({ userId: u }, i % 2 ? 'click' : 'purchase', daysAgo, `product:p-${i % 7}`, ['category:dress']),
    ),
  ]);
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe('an erased person stays gone', () => {
  let box: Sandbox;
  let pool: Pool;
  let redis: Redis;
  let query: FastifyInstance;
  const children: ChildProcess[] = [];
  const exited = (c: ChildProcess) =>
    new Promise<void>((resolve) =>
      c.exitCode !== null || c.signalCode !== null ? resolve() : c.once('exit', () => resolve()),
    );

  async function start(service: 'scorer' | 'segmenter'): Promise<ChildProcess> {
    const port = String(await freePort());
    const portVar =
      service === 'scorer'
        ? { SCORER_PORT: port, SCORER_HOST: '127.0.0.1' }
        : { SEGMENTER_PORT: port, SEGMENTER_HOST: '127.0.0.1' };
    // node with tsx as a loader: one process, so a SIGKILL hits the consumer itself
    const child = spawn(process.execPath, ['--import', 'tsx', `services/${service}/src/main.ts`], {
      cwd: ROOT,
      env: { ...box.env, ...portVar, LOG_LEVEL: 'warn', LOG_FORMAT: 'json' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.push(child);
    return child;
  }
  const stop = async (c: ChildProcess, signal: NodeJS.Signals) => {
    c.kill(signal);
    await exited(c);
  };

  beforeAll(async () => {
    box = await createSandbox(3);
    pool = createPool(process.env.DATABASE_URL!, box.env.PG_SCHEMA!, 'test-erasure', 4);
    await migrate(pool, box.env.PG_SCHEMA!);
    redis = createRedis({ REDIS_URL: process.env.REDIS_URL! }, 'test-erasure');
    query = await buildQuery(queryConfig(box.env), {
      log: silentLog,
      redis,
      pool,
      checks: [],
      metrics: createMetrics('query-api'),
    });
  }, 60_000);

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) await stop(c, 'SIGKILL');
    await query?.close();
    redis?.disconnect();
    await pool?.end();
    await box?.cleanup();
  }, 60_000);

  const get = (url: string) => query.inject({ method: 'GET', url, headers: auth });

  /** Nothing of the victim anywhere: API, every Redis key, every Postgres table. */
  async function expectGone(): Promise<void> {
    for (const id of [VICTIM, VICTIM_ANON]) {
      expect((await get(`/v1/profiles/${id}`)).statusCode).toBe(404);
      expect((await get(`/v1/profiles/${id}/interests`)).statusCode).toBe(404);
      const keys: string[] = [];
      for await (const batch of scanKeys(redis, `${box.env.REDIS_PREFIX}:p:{${id}}*`)) keys.push(...batch);
      expect(keys).toEqual([]);
    }
    const ids = [VICTIM, VICTIM_ANON];
    const { rows } = await pool.query<{ t: string; n: number }>(
      `SELECT 'identities' t, count(*)::int n FROM identities WHERE id = ANY($1) OR profile_key = ANY($1)
       UNION ALL SELECT 'people', count(*)::int FROM people WHERE profile_key = ANY($1)
       UNION ALL SELECT 'follows', count(*)::int FROM follows WHERE profile_key = ANY($1)
       UNION ALL SELECT 'follow_history', count(*)::int FROM follow_history WHERE profile_key = ANY($1)
       UNION ALL SELECT 'purchases', count(*)::int FROM purchases WHERE profile_key = ANY($1)
       UNION ALL SELECT 'event_counts', count(*)::int FROM event_counts WHERE profile_key = ANY($1)
       UNION ALL SELECT 'activity_daily', count(*)::int FROM activity_daily WHERE profile_key = ANY($1)
       UNION ALL SELECT 'tag_activity_daily', count(*)::int FROM tag_activity_daily WHERE profile_key = ANY($1)
       UNION ALL SELECT 'lifecycle_transitions', count(*)::int FROM lifecycle_transitions WHERE profile_key = ANY($1)
       UNION ALL SELECT 'lifecycle_outbox', count(*)::int FROM lifecycle_outbox WHERE profile_key = ANY($1)`,
      [ids],
    );
    expect(Object.fromEntries(rows.map((r) => [r.t, r.n]))).toEqual(Object.fromEntries(rows.map((r) => [r.t, 0])));
    const victimShop = (await get('/v1/targets/shop/s-victim/followers')).json();
    expect(victimShop.followers).toBe(0);
    expect(victimShop.daily.every((d: { follows: number }) => d.follows === 0)).toBe(true);
    expect((await get('/v1/targets/shop/s-shared/followers')).json().followers).toBe(OTHERS.length);
  }
  const othersHaveInterests = async () => {
    const body = (await get(`/v1/profiles/${OTHERS[3]}/interests`)).json();
    expect(body.interests.map((i: { tag: string }) => i.tag)).toContain('category:dress');
  };

  it('through new events, a SIGKILL and redelivery, a full rebuild and a replay into Postgres', async () => {
    const topic = box.env.EVENTS_TOPIC!;
    const groups = [box.env.SCORER_GROUP!, box.env.SEGMENTER_GROUP!];
    await produceMessages(box.kafka, topic, [...victimEvents(5), ...othersEvents(5, 4)]);
    let scorer = await start('scorer');
    let segmenter = await start('segmenter');
    await consumed(box.kafka, topic, groups, 120_000);

    // present before
    const before = (await get(`/v1/profiles/${VICTIM_ANON}`)).json();
    expect(before).toMatchObject({ userId: VICTIM, anonymousIds: [VICTIM_ANON] });
    expect(before.interests.map((i: { tag: string }) => i.tag)).toContain('category:secret');
    expect((await get('/v1/targets/shop/s-shared/followers')).json().followers).toBe(OTHERS.length + 1);

    // erase by the anonymous id: the whole merged person goes
    const del = await query.inject({ method: 'DELETE', url: `/v1/profiles/${VICTIM_ANON}`, headers: auth });
    expect(del.statusCode).toBe(202);
    const { erasureId } = del.json();
    const status = await waitFor('erasure done', async () => {
      const body = (await get(`/v1/erasures/${erasureId}`)).json();
      return body.status === 'done' ? body : undefined;
    });
    expect(status.doneAt).toEqual(expect.any(String));
    await expectGone();
    // the audit says who, when and which ids, without keeping an id in clear
    const audit = (await pool.query('SELECT * FROM erasures WHERE id = $1', [erasureId])).rows[0];
    const digest = (id: string) => createHash('sha256').update(id).digest('hex');
    expect(audit.requested_by).toMatch(/^token:[0-9a-f]{16}$/);
    expect([...audit.id_digests].sort()).toEqual([digest(VICTIM), digest(VICTIM_ANON)].sort());
    expect(audit.pending_ids).toBeNull();
    expect(JSON.stringify(audit)).not.toContain('victim');

    // new events, then SIGKILL both consumers mid-stream; the restarted ones get the redelivery
    await produceMessages(box.kafka, topic, [...othersEvents(1, 60), ...victimEvents(1), ...othersEvents(0, 60)]);
    await waitFor(
      'some new events applied',
      async () => {
        const { rows } = await pool.query<{ n: number }>(
          "SELECT coalesce(sum(n), 0)::int n FROM event_counts WHERE type = 'click'",
        );
        return rows[0]!.n > OTHERS.length * 2 ? true : undefined;
      },
      60_000,
      10,
    );
    await Promise.all([stop(scorer, 'SIGKILL'), stop(segmenter, 'SIGKILL')]);
    expect(scorer.signalCode).toBe('SIGKILL');
    scorer = await start('scorer');
    segmenter = await start('segmenter');
    await consumed(box.kafka, topic, groups, 120_000);
    await expectGone();
    await othersHaveInterests();

    // a full rebuild of Redis from the topic (scorers stopped, as the README says)
    await stop(scorer, 'SIGTERM');
    const sCfg = scorerConfig(box.env);
    const kafka = createKafka({ brokers: sCfg.KAFKA_BROKERS, clientId: 'test-rebuild', log: silentLog });
    const result = await rebuild(sCfg, { kafka, redis, pool, log: silentLog }, () => undefined, 100);
    expect(result.done).toBe(result.total);
    await expectGone();
    await othersHaveInterests();

    // a replay of the whole topic into Postgres with the dedupe records gone (as after the window)
    await stop(segmenter, 'SIGTERM');
    await pool.query('DELETE FROM applied_events');
    const gCfg = segmenterConfig({ ...box.env, SEGMENTER_GROUP: `${box.env.SEGMENTER_GROUP}-replay` });
    const producer = box.kafka.producer();
    await producer.connect();
    const replay = createSegmenter(gCfg, { kafka: box.kafka, pool, producer, log: silentLog });
    await replay.start();
    try {
      await consumed(box.kafka, topic, [gCfg.SEGMENTER_GROUP], 120_000);
    } finally {
      await replay.stop();
      await producer.disconnect();
      const admin = box.kafka.admin();
      await admin.connect();
      await admin.deleteGroups([gCfg.SEGMENTER_GROUP]).catch(() => undefined);
      await admin.disconnect();
    }
    await expectGone();
  }, 300_000);
});
