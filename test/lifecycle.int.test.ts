import { lifecycleMessageSchema, type LifecycleMessage, type ProfileEvent } from '@pstream/events';
import { normalizeEvent } from '@pstream/ingest/dialects';
import { createKeyring, createMetrics, createPool, createRedis } from '@pstream/platform';
import { migrate } from '@pstream/profile-store';
import { buildApp as buildQuery } from '@pstream/query-api/app';
import { loadConfig as queryConfig } from '@pstream/query-api/config';
import { loadConfig as segmenterConfig } from '@pstream/segmenter/config';
import { createSegmenter, type Segmenter } from '@pstream/segmenter/processor';
import type { FastifyInstance } from 'fastify';
import type { Consumer } from 'kafkajs';
import { createSandbox, type Sandbox, silentLog, waitFor } from '@pstream/testkit';
import { openJson } from '@pstream/testkit/streams';

/*
 * "Done means" of issue 5: a seeded stream of hundreds of people whose events span the last 160
 * days; GET /v1/profiles/{id} reports the stage and tiers docs/model.md §4.3 defines at the time of
 * asking, held against the straightforward implementation below (it does not use
 * packages/lifecycle); and when time passes a threshold the sweep moves people within one interval.
 */

const DAY = 86_400_000;
const PEOPLE = 300;
const SWEEP_MS = 400;
const USD_RATE = 7;

/**
 * §4.3 written out plainly, from the raw events of one person. Purchases are counted as §4.2
 * counts them: the lines of one order (same source and orderId) are one purchase, at its first
 * line's time and worth all its lines; a purchase without an orderId is its own.
 */
function expected(events: ProfileEvent[], t: number) {
  const times = (types: string[], sinceDays: number) =>
    events.filter((e) => types.includes(e.type) && Date.parse(e.occurredAt) >= t - sinceDays * DAY);
  const last = Math.max(...events.map((e) => Date.parse(e.occurredAt)));
  const orders = new Map<string, { at: number; spent: number }>();
  for (const e of events.filter((x) => x.type === 'purchase')) {
    const id = e.orderId !== undefined ? `order ${e.source} ${e.orderId}` : `event ${e.source} ${e.eventId}`;
    const o = orders.get(id) ?? { at: Infinity, spent: 0 };
    o.at = Math.min(o.at, Date.parse(e.occurredAt));
    o.spent += e.currency === 'USD' ? e.amount! * USD_RATE : e.amount!;
    orders.set(id, o);
  }
  const ordersIn = (days: number) => [...orders.values()].filter((o) => o.at >= t - days * DAY);
  const first = orders.size > 0 ? Math.min(...[...orders.values()].map((o) => o.at)) : undefined;
  let stage: string;
  if (t - last > 90 * DAY) stage = 'churned';
  else if (t - last > 30 * DAY) stage = 'at_risk';
  else if (ordersIn(90).length >= 3) stage = 'loyal';
  else if (first !== undefined && first >= t - 30 * DAY) stage = 'new';
  else if (first !== undefined) stage = 'active';
  else stage = 'potential';
  const yearly = ordersIn(365);
  const spent = yearly.reduce((sum, o) => sum + o.spent, 0);
  const value = yearly.length >= 5 || spent >= 2000 ? 'high' : yearly.length >= 1 ? 'medium' : 'low';
  const social = ['like', 'comment', 'share', 'favorite'];
  const socialTier = times(social, 30).length >= 5 ? 'active' : times(social, 90).length >= 1 ? 'potential' : 'silent';
  return { stage, value, social: socialTier };
}

/** A deterministic pseudo-random stream (mulberry32), so a failure can be replayed. */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

type Profile = {
  lifecycle: { stage: string | null };
  tiers: { value: string; social: string };
  stats: { events: Record<string, number> };
};

describe('lifecycle stages and tiers, end to end (issue 5 "done means")', () => {
  let box: Sandbox;
  let segmenter: Segmenter;
  let query: FastifyInstance;
  let watcher: Consumer;
  const lifecycleMessages: LifecycleMessage[] = [];
  const closers: (() => Promise<unknown>)[] = [];
  const asked = Date.now();
  let clock = asked;
  const byPerson = new Map<string, ProfileEvent[]>();

  beforeAll(async () => {
    box = await createSandbox(4);
    const env = { ...box.env, SEGMENTER_SWEEP_INTERVAL_MS: String(SWEEP_MS), CURRENCY_RATES: `USD=${USD_RATE}` };
    const cfg = segmenterConfig(env);
    const pool = createPool(cfg.DATABASE_URL, cfg.PG_SCHEMA, 'test-lifecycle');
    await migrate(pool, cfg.PG_SCHEMA);
    const producer = box.kafka.producer();
    await producer.connect();
    segmenter = createSegmenter(cfg, { kafka: box.kafka, pool, producer, log: silentLog, now: () => clock });
    closers.push(
      () => pool.end(),
      () => producer.disconnect(),
      () => segmenter.stop(),
    );

    const qCfg = queryConfig(env);
    const qRedis = createRedis(qCfg, 'test-query');
    const qPool = createPool(qCfg.DATABASE_URL, qCfg.PG_SCHEMA, 'test-query');
    query = await buildQuery(qCfg, {
      log: silentLog,
      redis: qRedis,
      pool: qPool,
      checks: [],
      metrics: createMetrics('query-api'),
    });
    closers.push(
      async () => qRedis.disconnect(),
      () => qPool.end(),
      () => query.close(),
    );

    watcher = box.kafka.consumer({ groupId: `test-${box.id}-watch` });
    await watcher.connect();
    await watcher.subscribe({ topic: cfg.LIFECYCLE_TOPIC, fromBeginning: true });
    const keyring = createKeyring(cfg, qPool);
    await watcher.run({
      eachMessage: async ({ message }) => {
        const m = await openJson<LifecycleMessage>(keyring, message.value);
        if (m) lifecycleMessages.push(m);
      },
    });
    closers.push(() => watcher.disconnect());

    // Hundreds of people, events over the last 160 days (a minute's margin before "now").
    const random = rng(42);
    const types = ['click', 'click', 'dwell', 'like', 'comment', 'share', 'favorite', 'purchase', 'follow'];
    const messages: { key: string; value: string }[] = [];
    for (let p = 0; p < PEOPLE; p++) {
      const id = `acc-${p}`;
      const span = 1 + Math.floor(random() * 160);
      const n = 1 + Math.floor(random() * 14);
      for (let i = 0; i < n; i++) {
        const type = types[Math.floor(random() * types.length)]!;
        const occurredAt = new Date(asked - 60_000 - Math.floor(random() * span * DAY)).toISOString();
        // Half the purchases are orders of 2-4 lines (as Segment's Order Completed sends them),
        // some with lines minutes apart; a few single purchases name an order too.
        const lines = type === 'purchase' && random() < 0.5 ? 2 + Math.floor(random() * 3) : 1;
        const orderId = type === 'purchase' && (lines > 1 || random() < 0.2) ? `o-${p}-${i}` : undefined;
        const currency = random() < 0.2 ? 'USD' : 'CNY';
        for (let line = 0; line < lines; line++) {
          const input = {
            type,
            userId: id,
            occurredAt:
              line === 0 || random() < 0.5
                ? occurredAt
                : new Date(Date.parse(occurredAt) - line * 60_000).toISOString(),
            target: { type: 'product', id: `p-${Math.floor(random() * 20)}` },
            tags: [`category:c${Math.floor(random() * 5)}`],
            ...(type === 'dwell' && { dwellMs: 5000 }),
            ...(type === 'purchase' && { amount: Math.round(random() * 90000) / 100 / lines, currency }),
            ...(orderId !== undefined && { orderId }),
          };
          const normalized = normalizeEvent(input, { source: 'acceptance', now: asked });
          if (!normalized.ok) throw new Error(JSON.stringify(normalized.errors));
          byPerson.set(id, [...(byPerson.get(id) ?? []), normalized.value]);
          messages.push({ key: id, value: JSON.stringify(normalized.value) });
        }
      }
    }
    await producer.send({ topic: cfg.EVENTS_TOPIC, acks: -1, messages });
    await segmenter.start();
  }, 60_000);

  afterAll(async () => {
    for (const close of closers.reverse()) await close();
    await box?.cleanup();
  }, 60_000);

  async function profile(id: string): Promise<Profile> {
    const res = await query.inject({
      method: 'GET',
      url: `/v1/profiles/${id}`,
      headers: { authorization: 'Bearer dev-api-token' },
    });
    expect(res.statusCode).toBe(200);
    return res.json() as Profile;
  }

  /** Every person whose reported stage or tiers differ from §4.3 at `t`. */
  async function mismatches(t: number): Promise<string[]> {
    const wrong: string[] = [];
    for (const [id, events] of byPerson) {
      const p = await profile(id);
      const want = expected(events, t);
      const got = { stage: p.lifecycle.stage, value: p.tiers.value, social: p.tiers.social };
      if (JSON.stringify(got) !== JSON.stringify(want))
        wrong.push(`${id}: got ${JSON.stringify(got)} want ${JSON.stringify(want)}`);
    }
    return wrong;
  }

  it('reports for every person the stage and tiers §4.3 defines at the time of asking, and the exact counts', async () => {
    const total = [...byPerson.values()].reduce((n, e) => n + e.length, 0);
    await waitFor(
      'every event applied',
      async () => {
        const { rows } = await box.pg.query(
          `SELECT coalesce(sum(n), 0)::int AS n FROM ${box.env.PG_SCHEMA}.event_counts`,
        );
        return rows[0].n === total ? true : undefined;
      },
      40_000,
    );
    expect(await mismatches(asked)).toEqual([]);
    for (const [id, events] of [...byPerson].slice(0, 50)) {
      const want: Record<string, number> = {};
      for (const e of events) want[e.type] = (want[e.type] ?? 0) + 1;
      expect((await profile(id)).stats.events).toEqual(want);
    }
    const stages = new Set([...byPerson.values()].map((e) => expected(e, asked).stage));
    expect(stages).toEqual(new Set(['potential', 'new', 'active', 'loyal', 'at_risk', 'churned']));
    // The stream holds people whose stage differs when lines rather than orders are counted.
    const byLines = (events: ProfileEvent[]) =>
      expected(
        events.map((e) => ({ ...e, orderId: undefined })),
        asked,
      );
    expect(
      [...byPerson.values()].filter((e) => JSON.stringify(byLines(e)) !== JSON.stringify(expected(e, asked))).length,
    ).toBeGreaterThan(5);
  }, 60_000);

  it.each([31, 91, 366])(
    'moves everyone whose threshold passed within one sweep interval when %i days go by',
    async (days) => {
      const rounds = segmenter.sweeper.rounds;
      const jumped = Date.now();
      clock = asked + days * DAY;
      await waitFor(
        'a sweep after the jump',
        async () => (segmenter.sweeper.rounds >= rounds + 2 ? true : undefined),
        10_000,
        20,
      );
      const within = Date.now() - jumped;
      expect(await mismatches(clock)).toEqual([]);
      // two completed rounds after the jump: the first may have started before it
      expect(within).toBeLessThan(3 * SWEEP_MS + 2000);
    },
    60_000,
  );

  it('publishes every recorded change on the lifecycle topic, ending in each person’s stage and tiers', async () => {
    const { rows } = await box.pg.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${box.env.PG_SCHEMA}.lifecycle_transitions`,
    );
    await waitFor('all transitions published', async () =>
      new Set(lifecycleMessages.map((m) => m.transitionId)).size === rows[0]!.n ? true : undefined,
    );
    for (const m of lifecycleMessages) expect(lifecycleMessageSchema.safeParse(m).error).toBeUndefined();
    const lastTo = new Map<string, string>();
    for (const m of lifecycleMessages) lastTo.set(`${m.kind} ${m.id}`, m.to);
    for (const [id, events] of byPerson) {
      const want = expected(events, clock);
      expect(lastTo.get(`stage ${id}`)).toBe(want.stage);
      expect(lastTo.get(`value_tier ${id}`) ?? 'low').toBe(want.value);
      expect(lastTo.get(`social_tier ${id}`) ?? 'silent').toBe(want.social);
    }
    expect(lifecycleMessages.every((m) => m.userId === m.id && m.anonymousIds.length === 0)).toBe(true);
  }, 30_000);
});
