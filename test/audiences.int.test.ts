import {
  createAudienceEngine,
  createInterestSource,
  type InterestSource,
  type Rule as AudienceRule,
} from '@pstream/audiences';
import type { IdentifyMessage, ProfileEvent } from '@pstream/events';
import { normalizeEvent, normalizeIdentify } from '@pstream/ingest/dialects';
import { keys } from '@pstream/interest-store';
import { createKeyring, createPool, createRedis } from '@pstream/platform';
import { createAudienceStore, migrate } from '@pstream/profile-store';
import { loadConfig as queryConfig } from '@pstream/query-api/config';
import { loadConfig as scorerConfig } from '@pstream/scorer/config';
import { createScorerConsumer } from '@pstream/scorer/processor';
import { loadConfig as segmenterConfig } from '@pstream/segmenter/config';
import { decayParams } from '@pstream/scoring';
import { createSegmenter, type Segmenter } from '@pstream/segmenter/processor';
import type { FastifyInstance } from 'fastify';
import type { Consumer } from 'kafkajs';
import type { QueryClient, Rule as ClientRule } from '@pstream/client';
import { createSandbox, prng, type Sandbox, silentLog, waitFor } from '@pstream/testkit';
import { queryClient, startQueryApi } from '@pstream/testkit/services';
import { appliedCount, openJson } from '@pstream/testkit/streams';

/*
 * "Done means" of issue 12: a seeded stream of hundreds of people with traits, follows, purchases
 * and tagged activity runs through the real scorer and segmenter (real Kafka, Redis, Postgres);
 * every §5.4 leaf and nesting, previewed and saved through the query API, matches a plain
 * computation here from the raw events and the served profiles at the time of asking; a saved
 * audience loses people by decay alone and says so on profile.audiences.v1; /similar answers
 * with the exact cosine of §5.3 and recalls the brute-force top 10.
 */

const DAY = 86_400_000;
const HALF_LIFE = 30 * DAY;
const PEOPLE = 240;
const SWEEP_MS = 300;
const TAGS = [
  'category:dress',
  'category:shoes',
  'category:bags',
  'brand:acme',
  'brand:zed',
  'style:casual',
  'style:formal',
  'color:red',
];
const CITIES = ['Hangzhou', 'Beijing', 'Shanghai', 'Shenzhen'];
const SOCIAL = ['like', 'comment', 'share', 'favorite'];
const AUTH = { authorization: 'Bearer dev-api-token' };

type Person = { id: string; events: ProfileEvent[]; traits: Record<string, string | number> };
type Served = {
  values: Map<string, number>;
  scores: Map<string, number>;
  stage: string | null;
  value: string;
  social: string;
};
type Rule = Record<string, unknown>;

const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** §5.4 read plainly, for one person: served interests/stage/tiers, generated traits, raw events. */
function holds(rule: Rule, p: Person, s: Served, now: number): boolean {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the rule's shape is checked by the API; this reads it loosely
  const [kind, arg] = Object.entries(rule)[0] as [string, any];
  switch (kind) {
    case 'all':
      return (arg as Rule[]).every((r) => holds(r, p, s, now));
    case 'any':
      return (arg as Rule[]).some((r) => holds(r, p, s, now));
    case 'not':
      return !holds(arg, p, s, now);
    case 'interest':
      return (s.values.get(arg.tag) ?? 0) >= arg.minValue;
    case 'stage':
      return arg.in.includes(s.stage);
    case 'tier':
      return arg.value ? arg.value.includes(s.value) : arg.social.includes(s.social);
    case 'trait': {
      const v = p.traits[arg.name];
      if (arg.op === 'exists') return v !== undefined;
      if (arg.op === 'eq') return v === arg.value;
      if (arg.op === 'ne') return v !== arg.value;
      if (arg.op === 'in') return (arg.value as unknown[]).includes(v);
      if (typeof v !== 'number') return false;
      return { gt: v > arg.value, gte: v >= arg.value, lt: v < arg.value, lte: v <= arg.value }[arg.op as 'gt'];
    }
    case 'follows': {
      let following = false;
      let at = -Infinity;
      for (const e of p.events) {
        if ((e.type !== 'follow' && e.type !== 'unfollow') || e.target.type !== arg.type || e.target.id !== arg.id)
          continue;
        const t = Date.parse(e.occurredAt);
        if (t >= at) [following, at] = [e.type === 'follow', t];
      }
      return following;
    }
    case 'did': {
      const from = utcDay(now - (arg.inLastDays - 1) * DAY);
      const to = utcDay(now);
      const n = p.events.filter((e) => {
        const day = e.occurredAt.slice(0, 10);
        if (e.type !== arg.type || day < from || day > to) return false;
        if (arg.target) return e.target.type === arg.target.type && e.target.id === arg.target.id;
        if (arg.tag) return e.tags.includes(arg.tag);
        return true;
      }).length;
      return n >= arg.atLeast;
    }
    default:
      throw new Error(`unknown leaf ${kind}`);
  }
}

/** §5.3 read plainly: tag values (served), $spend over 365 d, $social over the current UTC day and the 29 before. */
function vector(p: Person, s: Served, now: number): Map<string, number> {
  const v = new Map(s.values);
  const spend = p.events
    .filter((e) => e.type === 'purchase' && Date.parse(e.occurredAt) > now - 365 * DAY)
    .reduce((a, e) => a + e.amount!, 0);
  const since = utcDay(now - 29 * DAY);
  const social = p.events.filter((e) => SOCIAL.includes(e.type) && e.occurredAt.slice(0, 10) >= since).length;
  if (spend > 0) v.set('$spend', 10 * Math.tanh(spend / 1000));
  if (social > 0) v.set('$social', 10 * Math.tanh(social / 5));
  return v;
}

function cos(a: Map<string, number>, b: Map<string, number>): number {
  let dot = 0;
  for (const [k, x] of a) dot += x * (b.get(k) ?? 0);
  const norm = (m: Map<string, number>) => Math.sqrt([...m.values()].reduce((n, x) => n + x * x, 0));
  return dot / (norm(a) * norm(b));
}

describe('audiences and similar people, end to end (issue 12 "done means")', () => {
  let box: Sandbox;
  let segmenter: Segmenter;
  let query: FastifyInstance;
  let client: QueryClient;
  let watcher: Consumer;
  const audienceMessages: { audienceId: string; id: string; change: string; at: string; changeId: string }[] = [];
  const closers: (() => Promise<unknown>)[] = [];
  const people = new Map<string, Person>();
  const served = new Map<string, Served>();
  let offset = 0;
  let askedAt = 0;
  let auditPool: ReturnType<typeof createPool>;
  /** The query API's Redis client (its name tells its connections apart in CLIENT LIST), and its settings' env. */
  let queryRedisName: string;
  let queryEnv: Record<string, string | undefined>;

  beforeAll(async () => {
    box = await createSandbox(3);
    // No full re-evaluation of saved audiences (the safety net): every change below must come from
    // the people due, touched by a message, or changed by the lifecycle sweep.
    const env = { ...box.env, SEGMENTER_SWEEP_INTERVAL_MS: String(SWEEP_MS), SEGMENTER_AUDIENCE_FULL_EVERY_MS: '0' };
    const sCfg = segmenterConfig(env);
    const pool = createPool(sCfg.DATABASE_URL, sCfg.PG_SCHEMA, 'test-audiences');
    await migrate(pool, sCfg.PG_SCHEMA);
    const producer = box.kafka.producer();
    await producer.connect();
    const sRedis = createRedis(sCfg, 'test-audiences-seg');
    segmenter = createSegmenter(sCfg, {
      kafka: box.kafka,
      pool,
      producer,
      log: silentLog,
      redis: sRedis,
      now: () => Date.now() + offset,
    });
    closers.push(
      () => pool.end(),
      () => producer.disconnect(),
      async () => sRedis.disconnect(),
      () => segmenter.stop(),
    );
    auditPool = pool;

    const scCfg = scorerConfig(env);
    const scRedis = createRedis(scCfg, 'test-audiences-scorer');
    const scorer = createScorerConsumer(scCfg, { kafka: box.kafka, redis: scRedis, pool, log: silentLog });
    closers.push(
      async () => scRedis.disconnect(),
      () => scorer.stop(),
    );

    queryEnv = env;
    queryRedisName = `test-audiences-query-${box.id}`;
    const q = await startQueryApi(env, queryRedisName);
    query = q.app;
    client = queryClient(query);
    closers.push(() => q.close());

    watcher = box.kafka.consumer({ groupId: `test-${box.id}-audiences-watch` });
    await watcher.connect();
    await watcher.subscribe({ topic: sCfg.AUDIENCES_TOPIC, fromBeginning: true });
    const keyring = createKeyring(sCfg, q.pool);
    await watcher.run({
      eachMessage: async ({ message }) => {
        const m = await openJson<(typeof audienceMessages)[number]>(keyring, message.value);
        if (m) audienceMessages.push(m);
      },
    });
    closers.push(() => watcher.disconnect());

    // Hundreds of people: traits, follows and unfollows of shops, tagged clicks, likes and purchases over 60 days.
    const now = Date.now();
    const random = prng(12);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const messages: { key: string; value: string }[] = [];
    for (let i = 0; i < PEOPLE; i++) {
      const id = `aud-${i}`;
      const traits: Record<string, string | number> = {
        gender: pick(['f', 'm']),
        birthYear: 1960 + Math.floor(random() * 45),
      };
      if (random() < 0.8) traits.city = pick(CITIES);
      const person: Person = { id, events: [], traits };
      const identify = normalizeIdentify({ userId: id, traits }, { source: 'test', now });
      if (!identify.ok) throw new Error(JSON.stringify(identify.errors));
      messages.push({ key: id, value: JSON.stringify(identify.value satisfies IdentifyMessage) });
      const favourite = pick(TAGS);
      const span = 5 + Math.floor(random() * 55);
      for (let n = 2 + Math.floor(random() * 14); n > 0; n--) {
        const r = random();
        const type =
          r < 0.5 ? 'click' : r < 0.65 ? pick(SOCIAL) : r < 0.8 ? 'purchase' : r < 0.93 ? 'follow' : 'unfollow';
        const shop = type === 'follow' || type === 'unfollow';
        const input = {
          eventId: `${id}-${n}`,
          type,
          userId: id,
          occurredAt: new Date(now - 60_000 - Math.floor(random() * span * DAY)).toISOString(),
          target: shop
            ? { type: 'shop', id: `s-${Math.floor(random() * 3)}` }
            : { type: 'product', id: `p-${Math.floor(random() * 10)}` },
          tags: random() < 0.6 ? [favourite] : [pick(TAGS), ...(random() < 0.3 ? [pick(TAGS)] : [])],
          ...(type === 'purchase' && { amount: 50 + Math.floor(random() * 900), currency: 'CNY' }),
        };
        const e = normalizeEvent(input, { source: 'test', now });
        if (!e.ok) throw new Error(JSON.stringify(e.errors));
        person.events.push(e.value);
        messages.push({ key: id, value: JSON.stringify(e.value) });
      }
      people.set(id, person);
    }
    for (let i = 0; i < messages.length; i += 1000)
      await producer.send({ topic: sCfg.EVENTS_TOPIC, acks: -1, messages: messages.slice(i, i + 1000) });
    await scorer.start();
    await segmenter.start();

    const total = [...people.values()].reduce((n, p) => n + p.events.length, 0);
    await waitFor(
      'the scorer applied every event',
      async () => ((await appliedCount(scRedis, scCfg.REDIS_PREFIX, [...people.keys()])) === total ? true : undefined),
      60_000,
    );
    await waitFor(
      'the segmenter applied every event',
      async () => {
        const { rows } = await box.pg.query(
          `SELECT coalesce(sum(n), 0)::int AS n FROM ${box.env.PG_SCHEMA}.event_counts`,
        );
        return rows[0].n === total ? true : undefined;
      },
      60_000,
    );
    await waitFor(
      'every trait stored',
      async () => {
        const { rows } = await box.pg.query(
          `SELECT count(*)::int AS n FROM ${box.env.PG_SCHEMA}.people WHERE traits ? 'gender'`,
        );
        return rows[0].n === PEOPLE ? true : undefined;
      },
      60_000,
    );

    // What the query API serves for each person, at (about) the time of asking.
    askedAt = Date.now();
    for (const id of people.keys()) {
      const [p, { interests: list }] = await Promise.all([client.profile(id), client.interests(id, { limit: 200 })]);
      served.set(id, {
        values: new Map(list.map((x) => [x.tag, x.value])),
        scores: new Map(list.map((x) => [x.tag, x.score])),
        stage: p.lifecycle!.stage,
        value: p.tiers!.value,
        social: p.tiers!.social,
      });
    }
  }, 180_000);

  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await box?.cleanup();
  }, 60_000);

  const expected = (rule: Rule, now = askedAt) =>
    [...people.values()]
      .filter((p) => holds(rule, p, served.get(p.id)!, now))
      .map((p) => p.id)
      .sort();

  const RULES: [string, Rule][] = [
    ['interest', { interest: { tag: 'category:dress', minValue: 3 } }],
    ['stage', { stage: { in: ['active', 'loyal', 'new'] } }],
    ['value tier', { tier: { value: ['high', 'medium'] } }],
    ['social tier', { tier: { social: ['active', 'potential'] } }],
    ['trait eq', { trait: { name: 'city', op: 'eq', value: 'Hangzhou' } }],
    ['trait ne', { trait: { name: 'city', op: 'ne', value: 'Hangzhou' } }],
    ['trait in', { trait: { name: 'city', op: 'in', value: ['Beijing', 'Shenzhen'] } }],
    ['trait gte', { trait: { name: 'birthYear', op: 'gte', value: 1990 } }],
    ['trait lt', { trait: { name: 'birthYear', op: 'lt', value: 1975 } }],
    ['trait exists', { trait: { name: 'city', op: 'exists' } }],
    ['follows', { follows: { type: 'shop', id: 's-1' } }],
    ['did', { did: { type: 'purchase', atLeast: 2, inLastDays: 30 } }],
    ['did on a tag', { did: { type: 'click', tag: 'category:dress', atLeast: 2, inLastDays: 20 } }],
    ['did on a target', { did: { type: 'click', target: { type: 'product', id: 'p-3' }, atLeast: 1, inLastDays: 45 } }],
    [
      'the 3-leaf targeting rule',
      {
        all: [
          { interest: { tag: 'category:dress', minValue: 1 } },
          { trait: { name: 'gender', op: 'eq', value: 'f' } },
          { did: { type: 'purchase', atLeast: 1, inLastDays: 60 } },
        ],
      },
    ],
    [
      'nesting with any and not',
      {
        all: [
          { any: [{ follows: { type: 'shop', id: 's-0' } }, { interest: { tag: 'brand:acme', minValue: 2.5 } }] },
          { not: { stage: { in: ['churned', 'at_risk'] } } },
          {
            not: {
              any: [
                { trait: { name: 'city', op: 'eq', value: 'Beijing' } },
                { did: { type: 'like', atLeast: 1, inLastDays: 10 } },
              ],
            },
          },
        ],
      },
    ],
    ['a lone negation', { not: { interest: { tag: 'category:shoes', minValue: 1 } } }],
  ];

  it.each(RULES)('previews %s exactly as §5.4 reads at the time of asking', async (_name, rule) => {
    const body = await client.audiences.preview(rule as ClientRule);
    const want = expected(rule);
    expect(body.count).toBe(want.length);
    expect(body.sample.length).toBe(Math.min(20, want.length));
    for (const id of body.sample) expect(want).toContain(id);
  });

  it('the rules above are not trivially empty or full', () => {
    for (const [name, rule] of RULES) {
      const n = expected(rule).length;
      if (n === 0 || n === PEOPLE) throw new Error(`${name} holds for ${n} of ${PEOPLE}`);
    }
  });

  it('refuses a malformed rule with 400 naming the path', async () => {
    const res = await query.inject({
      method: 'POST',
      url: '/v1/audiences/preview',
      headers: AUTH,
      payload: {
        rule: { all: [{ stage: { in: ['active'] } }, { did: { type: 'purchase', atLeast: 0, inLastDays: 30 } }] },
      },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('QRY_INVALID_REQUEST');
    expect(res.json().error.details).toEqual([expect.objectContaining({ path: 'body.rule.all.1.did.atLeast' })]);
  });

  it('saves, lists, gets, pages every member exactly once, and deletes', async () => {
    const rule = RULES.find(([n]) => n === 'nesting with any and not')![1];
    const a = await client.audiences.create({ name: 'nested', rule: rule as ClientRule });
    expect(a).toMatchObject({ name: 'nested', rule, count: expected(rule).length });
    expect(await client.audiences.get(a.id)).toEqual(a);
    expect((await client.audiences.list()).audiences.map((x) => x.id)).toContain(a.id);
    const seen: string[] = [];
    for await (const member of client.audiences.allMembers(a.id, 7)) seen.push(member);
    expect(seen).toEqual([...new Set(seen)]);
    expect([...seen].sort()).toEqual(expected(rule));
    const bad = await query.inject({
      method: 'GET',
      url: `/v1/audiences/${a.id}/members?cursor=nonsense!`,
      headers: AUTH,
    });
    expect(bad.json().error.code).toBe('QRY_INVALID_CURSOR');

    // Paging while the membership changes: after the first page, a refresh drops some people not yet
    // paged and adds others (the running sweep may put them back meanwhile). Nobody appears twice, and
    // everyone who was a member throughout appears.
    const store = createAudienceStore(auditPool);
    const members = expected(rule);
    const first = await client.audiences.members(a.id, { limit: 10 });
    const dropped = new Set(members.filter((_, i) => i >= 10 && i % 3 === 0));
    const added = [...people.keys()].filter((id) => !members.includes(id)).slice(0, 15);
    await store.refresh(a.id, [...members.filter((m) => !dropped.has(m)), ...added], Date.now());
    const during: string[] = [...first.members];
    for (let c: string | null = first.nextCursor; c;) {
      const page = await client.audiences.members(a.id, { limit: 10, cursor: c });
      during.push(...page.members);
      c = page.nextCursor;
    }
    expect(during).toEqual([...new Set(during)]);
    for (const m of members) if (!dropped.has(m)) expect(during).toContain(m);

    await client.audiences.delete(a.id);
    await expect(client.audiences.get(a.id)).rejects.toMatchObject({ status: 404, code: 'QRY_AUDIENCE_NOT_FOUND' });
  });

  it('answers /similar with the exact §5.3 cosine and recalls the brute-force top 10', async () => {
    const vectors = new Map([...people.values()].map((p) => [p.id, vector(p, served.get(p.id)!, askedAt)]));
    let recalled = 0;
    const asked = [...people.keys()].filter((_, i) => i % 8 === 0);
    for (const id of asked) {
      const got = (await client.similar(id, { limit: 10 })).similar;
      expect(got.map((s) => s.id)).not.toContain(id);
      // The served values were read at askedAt and /similar takes its vectors now: interest values
      // decay against the undecaying $spend/$social by ~1e-7 of the cosine per second, so a busy
      // machine's seconds in between show up in the 7th digit.
      for (const s of got) expect(s.similarity).toBeCloseTo(cos(vectors.get(id)!, vectors.get(s.id)!), 5);
      const exact = [...vectors]
        .filter(([other]) => other !== id)
        .map(([, v]) => cos(vectors.get(id)!, v))
        .sort((a, b) => b - a);
      const tenth = exact[9]!;
      // a tie at the 10th place counts as recalled whichever tied person is named
      recalled += got.filter((s) => s.similarity >= tenth - 1e-9).length;
    }
    expect(recalled / (asked.length * 10)).toBeGreaterThanOrEqual(0.9);
  }, 60_000);

  it('answers an interest leaf among the people other leaves left by reading its holders whole as by checking each', async () => {
    const cfg = queryConfig(queryEnv);
    const redis = createRedis(cfg, `${queryRedisName}-plan`);
    try {
      const real = createInterestSource(
        redis,
        keys(cfg.REDIS_PREFIX),
        decayParams(cfg.DECAY_LANDMARK, cfg.DECAY_HALF_LIFE_DAYS),
        cfg.INTEREST_VALUE_SCALE,
      );
      /** The real source, its `holders` calls counted by whether they were among people (checked) or whole. */
      const counted = (checkCost: number | undefined, count = real.count) => {
        const calls = { whole: 0, among: 0 };
        const source: InterestSource = {
          ...real,
          count,
          checkCost,
          holders: (leaf, nowMs, within) => {
            calls[within === undefined ? 'whole' : 'among']++;
            return real.holders(leaf, nowMs, within);
          },
        };
        return { calls, engine: createAudienceEngine({ interests: source, facts: createAudienceStore(auditPool) }) };
      };
      // a check that costs more than any read whole: the leaf is read whole; a source that cannot count (Infinity)
      // has its leaf checked among the people the other leaves left, person by person
      const [whole, checked] = [counted(Infinity), counted(undefined, () => Promise.resolve(Infinity))];
      // an interest leaf after a smaller leaf: few people left (checked each unless read whole) or many
      const dress = { interest: { tag: 'category:dress', minValue: 1 } };
      const rules: Rule[] = [
        {
          all: [{ did: { type: 'click', target: { type: 'product', id: 'p-3' }, atLeast: 1, inLastDays: 45 } }, dress],
        },
        { all: [{ follows: { type: 'shop', id: 's-1' } }, dress] },
        { all: [{ did: { type: 'purchase', atLeast: 2, inLastDays: 30 } }, dress] },
        { all: [{ did: { type: 'click', atLeast: 1, inLastDays: 60 } }, dress] },
        RULES.find(([name]) => name === 'the 3-leaf targeting rule')![1],
      ];
      const at = Date.now() + offset;
      let found = 0;
      for (const rule of rules) {
        const want = await checked.engine.members(rule as AudienceRule, at);
        expect(await whole.engine.members(rule as AudienceRule, at)).toEqual(want);
        found += want.length;
      }
      expect(found).toBeGreaterThan(0);
      expect(whole.calls.among).toBe(0);
      expect(checked.calls.among).toBeGreaterThan(0);
    } finally {
      redis.disconnect();
    }
  });

  it('reads /similar candidates over SIMILAR_READ_CONNECTIONS Redis connections, and answers as over one', async () => {
    const cfg = queryConfig(queryEnv);
    expect(cfg.SIMILAR_READ_CONNECTIONS).toBeGreaterThan(1);
    // a query API reading over one connection, beside the one above (default settings)
    const one = await startQueryApi(
      { ...queryEnv, SIMILAR_READ_CONNECTIONS: '1', FOLLOWERS_READ_CONNECTIONS: '1' },
      `${queryRedisName}-one`,
    );
    try {
      const oneClient = queryClient(one.app);
      for (const id of [...people.keys()].filter((_, i) => i % 8 === 0)) {
        const got = (await client.similar(id, { limit: 20 })).similar;
        const want = (await oneClient.similar(id, { limit: 20 })).similar;
        // the same people and cosines (each answer takes its vectors at its own instant: decay moves the 7th digit)
        expect(got.map((s) => s.id)).toEqual(want.map((s) => s.id));
        got.forEach((s, i) => expect(s.similarity).toBeCloseTo(want[i]!.similarity, 5));
      }
      // the default query API's Redis client and its extra connections, opened by the reads above
      const names = String(await one.redis.client('LIST'))
        .split('\n')
        .map((line) => /(?:^| )name=(\S*)/.exec(line)?.[1]);
      expect(names.filter((n) => n === queryRedisName)).toHaveLength(
        Math.max(cfg.SIMILAR_READ_CONNECTIONS, cfg.FOLLOWERS_READ_CONNECTIONS),
      );
      expect(names.filter((n) => n === `${queryRedisName}-one`)).toHaveLength(1);
    } finally {
      await one.close();
    }
  }, 60_000);

  it('leaves an opted-out person out of previews and similar lists (docs/api.md §5.7)', async () => {
    const rule = { interest: { tag: 'category:dress', minValue: 3 } };
    const before = expected(rule);
    const out = before[0]!;
    const similarTo = async (id: string) => (await client.similar(id, { limit: 100 })).similar.map((x) => x.id);
    let asker: string | undefined;
    for (const id of before.slice(1))
      if ((await similarTo(id)).includes(out)) {
        asker = id;
        break;
      }
    expect(asker).toBeDefined();
    const consent = await query.inject({
      method: 'PUT',
      url: `/v1/profiles/${out}/consent`,
      headers: AUTH,
      payload: { personalization: false },
    });
    expect(consent.statusCode).toBe(200);
    const preview = await client.audiences.preview(rule);
    expect(preview.count).toBe(before.length - 1);
    expect(preview.sample).not.toContain(out);
    expect(await similarTo(asker!)).not.toContain(out);
    // Nor is anyone ranked from the opted-out person's own interests (no personalization for them).
    expect((await similarTo(asker!)).length).toBeGreaterThan(0);
    expect(await similarTo(out)).toEqual([]);
    await query.inject({
      method: 'PUT',
      url: `/v1/profiles/${out}/consent`,
      headers: AUTH,
      payload: { personalization: true },
    });
    expect((await client.audiences.preview(rule)).count).toBe(before.length);
    expect(await similarTo(out)).toContain(asker);
  });

  it('publishes the entry an event causes in a saved audience within sweeps', async () => {
    const rule = { follows: { type: 'shop' as const, id: 's-9' } };
    const created = await client.audiences.create({ name: 'shop 9 followers', rule });
    expect(created.count).toBe(0);
    const e = normalizeEvent(
      { eventId: 'follow-s9', type: 'follow', userId: 'aud-7', target: { type: 'shop', id: 's-9' } },
      { source: 'test', now: Date.now() },
    );
    if (!e.ok) throw new Error(JSON.stringify(e.errors));
    const producer = box.kafka.producer();
    await producer.connect();
    await producer.send({
      topic: box.env.EVENTS_TOPIC!,
      acks: -1,
      messages: [{ key: 'aud-7', value: JSON.stringify(e.value) }],
    });
    await producer.disconnect();
    const entries = await waitFor(
      'the entry published',
      async () => {
        const m = audienceMessages.filter((x) => x.audienceId === created.id);
        return m.length > 0 ? m : undefined;
      },
      30_000,
    );
    expect(entries.map((m) => [m.id, m.change])).toEqual([['aud-7', 'enter']]);
    await client.audiences.delete(created.id);
  }, 60_000);

  it('publishes the exits and entries time alone causes on profile.audiences.v1 within sweeps, with a change id each', async () => {
    // A decaying interest (exits), a negated one (entries as it decays), and a `did` window sliding past every event (exits).
    const rules = {
      decay: { interest: { tag: 'category:dress', minValue: 4 } },
      between: {
        all: [
          { interest: { tag: 'category:dress', minValue: 0.5 } },
          { not: { interest: { tag: 'category:dress', minValue: 4 } } },
        ],
      },
      window: { did: { type: 'click', atLeast: 1, inLastDays: 30 } },
    };
    const created: Record<string, { id: string; count: number }> = {};
    for (const [name, rule] of Object.entries(rules)) {
      created[name] = await client.audiences.create({ name, rule: rule as ClientRule });
      expect(created[name]!.count).toBe(expected(rule).length);
    }
    // 40 days pass for the segmenter's sweeps: the stored scores do not change, their values decay.
    const jump = 40 * DAY;
    offset = jump;
    const decayed = (id: string) => {
      const score = (served.get(id)!.scores.get('category:dress') ?? 0) * 2 ** (-jump / HALF_LIFE);
      return 10 * Math.tanh(score / 10);
    };
    const ids = [...people.keys()].sort();
    const want = {
      decay: ids.filter((id) => decayed(id) >= 4),
      between: ids.filter((id) => decayed(id) >= 0.5 && decayed(id) < 4),
      window: expected(rules.window, askedAt + jump),
    };
    expect(want.decay.length).toBeLessThan(expected(rules.decay).length);
    expect(want.window).toEqual([]);
    for (const [name, rule] of Object.entries(rules) as [keyof typeof rules, Rule][]) {
      const before = expected(rule);
      const after = want[name];
      const gone = before.filter((id) => !after.includes(id));
      const come = after.filter((id) => !before.includes(id));
      expect(gone.length + come.length).toBeGreaterThan(0);
      const changes = (change: string) =>
        audienceMessages.filter((m) => m.audienceId === created[name]!.id && m.change === change);
      await waitFor(
        `${name}: every exit and entry published`,
        async () =>
          new Set(changes('exit').map((m) => m.id)).size === gone.length &&
          new Set(changes('enter').map((m) => m.id)).size === come.length
            ? true
            : undefined,
        30_000,
      );
      expect(
        changes('exit')
          .map((m) => m.id)
          .sort(),
      ).toEqual(gone);
      expect(
        changes('enter')
          .map((m) => m.id)
          .sort(),
      ).toEqual(come);
      for (const m of [...changes('exit'), ...changes('enter')]) expect(m.changeId).toMatch(/^\d+$/);
      const { members } = await client.audiences.members(created[name]!.id, { limit: 1000 });
      expect([...members].sort()).toEqual(after);
    }
  }, 90_000);
});
