/**
 * Follower insight (docs/api.md §5.5) end to end: a seeded stream of follows, unfollows, re-follows,
 * duplicates, merges (anonymous → user), traits and purchases goes through Kafka into the real
 * segmenter and scorer; the query API's answers are held to a computation made here from the
 * stream itself (followers, daily dynamics, traits, overlap) and from per-person reads (stages,
 * tiers, interests), never from the aggregates under test.
 */
import type { TopicMessage } from '@pstream/events';
import { createMetrics, createPool, createRedis, type Pool, type Redis } from '@pstream/platform';
import { migrate } from '@pstream/profile-store';
import { buildApp as buildQuery } from '@pstream/query-api/app';
import { loadConfig as queryConfig } from '@pstream/query-api/config';
import { loadConfig as scorerConfig } from '@pstream/scorer/config';
import { createScorerConsumer } from '@pstream/scorer/processor';
import { loadConfig as segmenterConfig } from '@pstream/segmenter/config';
import { createSegmenter } from '@pstream/segmenter/processor';
import type { FastifyInstance } from 'fastify';
import { consumed, createSandbox, prng, produceMessages, type Sandbox, silentLog } from '@pstream/testkit';

const DAY = 86_400_000;
const now = Date.now();
const TARGETS = ['s-0', 's-1', 's-2'];
const CITIES = ['Hangzhou', 'Shanghai', 'Beijing', 'Chengdu'];
const auth = { authorization: 'Bearer dev-api-token' };

type Person = { user: string; anon?: string; traits: Record<string, string | number> };

/** The stream, and what it means computed directly from it. */
function generate(seed: number, people: number) {
  const rand = prng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  const messages: TopicMessage[] = [];
  const persons: Person[] = [];
  const following = new Map<string, Map<string, boolean>>(); // user → target → following
  // every distinct follow/unfollow in event-time order per person, and whether it changed their follow set
  const actions: { at: string; action: 'follow' | 'unfollow'; target: string; changed: boolean }[] = [];
  let n = 0;
  const base = (at: number) => ({
    v: 1 as const,
    eventId: `e${n++}`,
    source: 'test',
    occurredAt: new Date(at).toISOString(),
    receivedAt: new Date(now).toISOString(),
  });
  for (let i = 0; i < people; i++) {
    const user = `u-${i}`;
    const anon = i % 3 === 0 ? `a-${i}` : undefined;
    const traits: Record<string, string | number> = {};
    if (rand() < 0.8) traits.gender = pick(['female', 'male', 'Female']);
    const age = rand();
    if (age < 0.5) traits.birthYear = 1960 + Math.floor(rand() * 50);
    else if (age < 0.7) traits.age = 15 + Math.floor(rand() * 50);
    if (rand() < 0.7) traits.city = pick(CITIES);
    persons.push({ user, ...(anon && { anon }), traits });
    const state = new Map<string, boolean>();
    following.set(user, state);
    // strictly increasing event times per person, some older than the 30-day window
    let t = now - 40 * DAY + Math.floor(rand() * DAY);
    const steps = 2 + Math.floor(rand() * 7);
    const mergeAfter = anon ? Math.floor(steps / 2) : -1;
    const who = (k: number) =>
      anon && k < mergeAfter ? { anonymousId: anon, profileKey: anon } : { userId: user, profileKey: user };
    for (let k = 0; k < steps; k++) {
      t += Math.floor(rand() * 5 * DAY) + 1;
      if (k === mergeAfter || (anon === undefined && k === 0)) {
        messages.push({
          ...base(t),
          kind: 'identify',
          userId: user,
          ...(anon && { anonymousId: anon }),
          profileKey: user,
          traits,
        });
        t += 1;
      }
      const target = pick(TARGETS);
      const action = state.get(target) && rand() < 0.6 ? 'unfollow' : rand() < 0.85 ? 'follow' : 'unfollow';
      const m: TopicMessage = {
        ...base(t),
        kind: 'event',
        type: action,
        ...who(k),
        target: { type: 'shop', id: target },
        tags: [],
      } as TopicMessage;
      messages.push(m);
      if (rand() < 0.1) messages.push({ ...m }); // a duplicate delivery: same source and eventId
      actions.push({
        at: m.occurredAt,
        action,
        target,
        changed: (action === 'follow') !== (state.get(target) === true),
      });
      state.set(target, action === 'follow');
    }
    if (i % 4 === 0) {
      // two recent purchases tagged category:dress: a strong interest (value ≥ 5) and a stage
      for (const d of [3, 2]) {
        messages.push({
          ...base(now - d * DAY),
          kind: 'event',
          type: 'purchase',
          userId: user,
          profileKey: user,
          target: { type: 'product', id: 'p-1' },
          tags: ['category:dress'],
          amount: 100,
          currency: 'CNY',
        } as TopicMessage);
      }
    }
    if (i % 5 === 0) {
      for (const d of [4, 1]) {
        messages.push({
          ...base(now - d * DAY),
          kind: 'event',
          type: 'purchase',
          userId: user,
          profileKey: user,
          target: { type: 'product', id: 'p-2' },
          tags: ['style:casual'],
          amount: 10,
          currency: 'CNY',
        } as TopicMessage);
      }
    }
  }
  const followersOf = (target: string) =>
    new Set([...following].filter(([, s]) => s.get(target) === true).map(([u]) => u));
  return { messages, persons, followersOf, actions };
}

describe('followers of a target (docs/api.md §5.5) against a computation from the stream', () => {
  let box: Sandbox;
  let query: FastifyInstance;
  let redis: Redis;
  let pool: Pool;
  const closers: (() => Promise<unknown>)[] = [];
  const stream = generate(5, 90);

  beforeAll(async () => {
    box = await createSandbox(3);
    pool = createPool(process.env.DATABASE_URL!, box.env.PG_SCHEMA!, 'test-followers', 4);
    await migrate(pool, box.env.PG_SCHEMA!);
    closers.push(() => pool.end());
    redis = createRedis({ REDIS_URL: process.env.REDIS_URL! }, 'test-followers');
    closers.push(async () => redis.disconnect());
    const producer = box.kafka.producer();
    await producer.connect();
    const segmenter = createSegmenter(segmenterConfig(box.env), { kafka: box.kafka, pool, producer, log: silentLog });
    const scorer = createScorerConsumer(scorerConfig(box.env), { kafka: box.kafka, redis, pool, log: silentLog });
    await segmenter.start();
    await scorer.start();
    closers.push(
      () => producer.disconnect(),
      () => segmenter.stop(),
      () => scorer.stop(),
    );
    query = await buildQuery(queryConfig({ ...box.env, FOLLOWERS_SAMPLE_SIZE: '1000' }), {
      log: silentLog,
      redis,
      pool,
      checks: [],
      metrics: createMetrics('query-api'),
    });
    closers.push(() => query.close());
    await produceMessages(box.kafka, box.env.EVENTS_TOPIC!, stream.messages);
    await consumed(box.kafka, box.env.EVENTS_TOPIC!, [box.env.SCORER_GROUP!, box.env.SEGMENTER_GROUP!]);
  }, 120_000);

  afterAll(async () => {
    for (const close of closers.reverse()) await close();
    await box?.cleanup();
  }, 60_000);

  const get = async (url: string) => {
    const res = await query.inject({ method: 'GET', url, headers: auth });
    expect(res.statusCode).toBe(200);
    return res.json();
  };

  it('counts current followers, 30 days of changes of the follow set that add up to the change in followers, and the followers’ traits exactly', async () => {
    // the stream has what the counts must survive: merges of followers, re-follows, duplicates
    const anonFollows = stream.messages.filter(
      (m) => m.kind === 'event' && m.type === 'follow' && m.anonymousId !== undefined,
    );
    expect(
      anonFollows.some((m) => TARGETS.some((t) => stream.followersOf(t).has(m.profileKey.replace('a-', 'u-')))),
    ).toBe(true);
    expect(new Set(stream.messages.map((m) => m.eventId)).size).toBeLessThan(stream.messages.length);
    expect(stream.actions.filter((a) => a.action === 'unfollow').length).toBeGreaterThan(10);
    // and what daily must not count: repeat follows, unfollows of what was not followed
    expect(stream.actions.filter((a) => a.action === 'follow' && !a.changed).length).toBeGreaterThan(5);
    expect(stream.actions.filter((a) => a.action === 'unfollow' && !a.changed).length).toBeGreaterThan(5);
    const today = Math.floor(now / DAY) * DAY;
    for (const target of TARGETS) {
      const followers = stream.followersOf(target);
      const body = await get(`/v1/targets/shop/${target}/followers`);
      expect(body.target).toEqual({ type: 'shop', id: target });
      expect(body.followers).toBe(followers.size);

      // daily: the changes of the follow set on the target by the UTC day of their time — a repeat
      // follow is no follow, an unfollow of what was not followed no unfollow
      const want = new Map<string, { follows: number; unfollows: number }>();
      for (let i = 29; i >= 0; i--)
        want.set(new Date(today - i * DAY).toISOString().slice(0, 10), { follows: 0, unfollows: 0 });
      let before = 0; // followers at the start of the window, from the changes before it
      for (const a of stream.actions) {
        if (a.target !== target || !a.changed) continue;
        const day = want.get(a.at.slice(0, 10));
        if (day) day[a.action === 'follow' ? 'follows' : 'unfollows']++;
        else before += a.action === 'follow' ? 1 : -1;
      }
      expect(body.daily).toEqual([...want].map(([date, v]) => ({ date, ...v })));
      // Σ follows − Σ unfollows over the 30 days is the change in followers
      const net = body.daily.reduce(
        (n: number, d: { follows: number; unfollows: number }) => n + d.follows - d.unfollows,
        0,
      );
      expect(net).toBe(followers.size - before);
      expect(body.daily.some((d: { follows: number }) => d.follows > 0)).toBe(true);

      const traits = stream.persons.filter((p) => followers.has(p.user)).map((p) => p.traits);
      const gender: Record<string, number> = {};
      for (const t of traits) {
        const g = typeof t.gender === 'string' ? t.gender.toLowerCase() : 'unknown';
        gender[g] = (gender[g] ?? 0) + 1;
      }
      expect(body.traits.gender).toEqual(gender);
      expect(body.traits.genderOther).toBe(0);
      const year = new Date(now).getUTCFullYear();
      const bands: Record<string, number> = {
        '<18': 0,
        '18-24': 0,
        '25-29': 0,
        '30-34': 0,
        '35-39': 0,
        '40-49': 0,
        '50+': 0,
        unknown: 0,
      };
      for (const t of traits) {
        const age =
          t.birthYear !== undefined ? year - Number(t.birthYear) : t.age !== undefined ? Number(t.age) : undefined;
        const band =
          age === undefined
            ? 'unknown'
            : age < 18
              ? '<18'
              : age < 25
                ? '18-24'
                : age < 30
                  ? '25-29'
                  : age < 35
                    ? '30-34'
                    : age < 40
                      ? '35-39'
                      : age < 50
                        ? '40-49'
                        : '50+';
        bands[band]!++;
      }
      expect(body.traits.ageBand).toEqual(bands);
      const cities = new Map<string, number>();
      for (const t of traits) if (t.city) cities.set(String(t.city), (cities.get(String(t.city)) ?? 0) + 1);
      expect(body.traits.city).toEqual(
        [...cities]
          .map(([value, count]) => ({ value, count }))
          .sort((a, b) => b.count - a.count || (a.value < b.value ? -1 : 1))
          .slice(0, 10),
      );
    }
  });

  it('mixes stages, tiers and top interests over the same followers as their own profiles say', async () => {
    const optedOut = 'u-8'; // i % 4 === 0: has a strong category:dress interest
    const put = await query.inject({
      method: 'PUT',
      url: `/v1/profiles/${optedOut}/consent`,
      headers: auth,
      payload: { personalization: false },
    });
    expect(put.statusCode).toBe(200);
    for (const target of TARGETS) {
      const followers = [...stream.followersOf(target)];
      const stages: Record<string, number> = { potential: 0, new: 0, active: 0, loyal: 0, at_risk: 0, churned: 0 };
      const value: Record<string, number> = { high: 0, medium: 0, low: 0 };
      const strong = new Map<string, number>();
      let allowed = 0;
      for (const id of followers) {
        const profile = await get(`/v1/profiles/${id}`);
        stages[profile.lifecycle.stage]!++;
        value[profile.tiers.value]!++;
        if (!profile.consent.personalization) continue;
        allowed++;
        for (const i of (await get(`/v1/profiles/${id}/interests`)).interests)
          if (i.value >= 5) strong.set(i.tag, (strong.get(i.tag) ?? 0) + 1);
      }
      const body = await get(`/v1/targets/shop/${target}/followers`);
      expect(body.stages).toEqual(stages);
      expect(body.tiers).toEqual({ value });
      expect(body.sample).toEqual({ size: allowed, exact: true });
      const want = [...strong]
        .map(([tag, n]) => ({ tag, share: n / allowed }))
        .sort((a, b) => b.share - a.share || (a.tag < b.tag ? -1 : 1))
        .slice(0, 10);
      expect(body.topInterests).toEqual(want);
      if (followers.includes(optedOut)) expect(allowed).toBe(followers.length - 1);
    }
    const s0 = await get('/v1/targets/shop/s-0/followers');
    expect(new Set(Object.values(s0.stages).filter((n) => (n as number) > 0)).size).toBeGreaterThan(1);
    expect(s0.topInterests.map((i: { tag: string }) => i.tag)).toContain('category:dress');
    // the opted-out person's interests are served nowhere, their facts still are
    const profile = await get(`/v1/profiles/${optedOut}`);
    expect(profile).toMatchObject({ consent: { personalization: false }, interests: [] });
    expect(profile.stats.purchases).toBe(2);
    expect((await get(`/v1/profiles/${optedOut}/interests`)).interests).toEqual([]);
    // and come back on opting in again
    await query.inject({
      method: 'PUT',
      url: `/v1/profiles/${optedOut}/consent`,
      headers: auth,
      payload: { personalization: true },
    });
    expect(
      (await get(`/v1/profiles/${optedOut}/interests`)).interests.some(
        (i: { tag: string }) => i.tag === 'category:dress',
      ),
    ).toBe(true);
  });

  it('gives the overlap of two targets’ followers, and zeros for a target nobody follows', async () => {
    const a = stream.followersOf('s-0');
    const b = stream.followersOf('s-1');
    const both = [...a].filter((u) => b.has(u)).length;
    expect(both).toBeGreaterThan(0);
    const body = await get('/v1/targets/shop/s-0/followers/overlap?with=shop:s-1');
    expect(body).toEqual({
      a: { target: { type: 'shop', id: 's-0' }, followers: a.size },
      b: { target: { type: 'shop', id: 's-1' }, followers: b.size },
      both,
      jaccard: both / (a.size + b.size - both),
      exact: true,
    });
    const none = await get('/v1/targets/creator/nobody/followers');
    expect(none).toMatchObject({
      followers: 0,
      stages: { potential: 0, new: 0, active: 0, loyal: 0, at_risk: 0, churned: 0 },
      topInterests: [],
    });
    expect(none.daily).toHaveLength(30);
    const bad = await query.inject({
      method: 'GET',
      url: '/v1/targets/shop/s-0/followers/overlap?with=planet:x',
      headers: auth,
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('QRY_INVALID_REQUEST');
  });

  it('keeps the 10 most frequent genders, as it does cities, and counts the followers of the others', async () => {
    // 12 gender values (v0 and v1 twice) and two people without one, all following one new shop
    const people = [...Array.from({ length: 12 }, (_, i) => `V${i}`), 'V0', 'v1', undefined, undefined];
    const at = (k: number) => ({
      v: 1 as const,
      eventId: `gender-${k}`,
      source: 'test',
      occurredAt: new Date(now - DAY + k).toISOString(),
      receivedAt: new Date(now).toISOString(),
    });
    const messages = people.flatMap((gender, i): TopicMessage[] => [
      {
        ...at(2 * i),
        kind: 'identify',
        userId: `gu-${i}`,
        profileKey: `gu-${i}`,
        traits: gender === undefined ? {} : { gender },
      },
      {
        ...at(2 * i + 1),
        kind: 'event',
        type: 'follow',
        userId: `gu-${i}`,
        profileKey: `gu-${i}`,
        target: { type: 'shop', id: 'genders' },
        tags: [],
      } as TopicMessage,
    ]);
    await produceMessages(box.kafka, box.env.EVENTS_TOPIC!, messages);
    await consumed(box.kafka, box.env.EVENTS_TOPIC!, [box.env.SCORER_GROUP!, box.env.SEGMENTER_GROUP!]);
    const body = await get('/v1/targets/shop/genders/followers');
    expect(body.followers).toBe(16);
    // by count, ties by value: unknown 2, v0 2, v1 2, then v10 v11 v2 … v6; v7, v8, v9 are the rest
    expect(body.traits.gender).toEqual({ unknown: 2, v0: 2, v1: 2, v10: 1, v11: 1, v2: 1, v3: 1, v4: 1, v5: 1, v6: 1 });
    expect(body.traits.genderOther).toBe(3);
  });
});
