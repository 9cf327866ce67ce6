import { EVENT_TYPES } from '@pstream/events';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import {
  applyEvent,
  emptyModel,
  emptyState,
  explicitTags,
  targetTag,
  type PersonModel,
  type ScoringEvent,
  type ScoringParams,
} from '@pstream/scoring';
import type { Redis as RedisClient } from '@pstream/platform';
import { testId } from '@pstream/testkit';
import {
  createInterestStore,
  lookupCatalog,
  readAppliedDigests,
  readInterests,
  readStoredInterests,
  strongestTags,
  timelineParams,
  writeCatalog,
  type PreparedEvent,
  type StoreOptions,
} from '../src';
import { decodeState, digestOf, encodeJsonState, encodeState, storedScores } from '../src/state';
import { testScoringParams } from '@pstream/scoring/testing';

const L = Date.parse('2026-01-01T00:00:00Z');
const MIN = 60_000;
const DAY = 86_400_000;
const scoring: ScoringParams = testScoringParams({ maxOpenVisits: 4 });
const W = 2 * DAY;
const options: StoreOptions = { scoring, maxTagsPerPerson: 1000, latenessMs: W, dedupeWindowMs: 3 * DAY };

const targets = ['p-1', 'p-2', 'p-3', 'p-4', 'p-5', 'p-6'].map((id) => ({ type: 'product' as const, id }));
/** An event at `L + DAY + 4·x + lane`: events of different lanes (people merged later) never share a time. */
const eventArb = (lane: number): fc.Arbitrary<ScoringEvent> =>
  fc.record({
    type: fc.constantFrom(...EVENT_TYPES),
    target: fc.constantFrom(...targets),
    tags: fc.subarray(['category:dress', 'brand:acme', 'style:casual', 'product:p-1']),
    occurredMs: fc.integer({ min: 0, max: DAY / 4 - 1 }).map((x) => L + DAY + 4 * x + lane),
    dwellMs: fc.integer({ min: 0, max: 90_000 }),
  });
// any arrival order of events within one day (all within W): distinct times, so the time-sorted stream is one stream
const streamArb = (lane = 0) =>
  fc
    .uniqueArray(eventArb(lane), { maxLength: 50, selector: (e) => e.occurredMs })
    .chain((es) => fc.boolean().map((shuffle) => (shuffle ? es : [...es].sort((a, b) => a.occurredMs - b.occurredMs))));

/** Events of these types a minute apart from L + DAY, on two products in turn, all tagged `category:dress`. */
const minuteApart = (types: readonly ScoringEvent['type'][]): ScoringEvent[] =>
  types.map((type, i) => ({ type, target: targets[i % 2]!, tags: ['category:dress'], occurredMs: L + DAY + i * MIN }));

let seq = 0;
function prepared(profileKey: string, e: ScoringEvent, id = `e${seq++}`): PreparedEvent {
  return {
    profileKey,
    member: `test|${id}`,
    receivedMs: Date.now(),
    type: e.type,
    occurredMs: e.occurredMs,
    targetKey: targetTag(e.target),
    dwellMs: e.type === 'dwell' ? e.dwellMs : undefined,
    tags: explicitTags(e.tags, e.target),
  };
}
/** The pure model over the time-sorted stream: what the store must give whatever the arrival order. */
function model(events: ScoringEvent[], m = emptyModel()): PersonModel {
  for (const e of [...events].sort((a, b) => a.occurredMs - b.occurredMs))
    applyEvent(m, e.type === 'dwell' ? e : { ...e, dwellMs: undefined }, scoring);
  return m;
}
function expectClose(got: Map<string, number>, want: Map<string, number>): void {
  const tags = new Set([...got.keys(), ...want.keys()]);
  for (const tag of tags) {
    const g = got.get(tag) ?? 0;
    const w = want.get(tag) ?? 0;
    if (Math.abs(g - w) > 1e-9 * Math.max(1e-6, Math.abs(w))) throw new Error(`${tag}: redis ${g} ≠ model ${w}`);
  }
}

// property tests of dozens of streams through real Redis: room for a loaded machine
jest.setTimeout(90_000);

describe('the interest store against real Redis', () => {
  const redis = new Redis(process.env.REDIS_URL!);
  const prefix = `test:${testId()}`;
  const store = createInterestStore(redis, prefix, options);
  // what readers read: the scores the state carries (`:int` only for a state written before it carried them)
  const stored = async (id: string) => (await readStoredInterests(redis, store.keys, [id])).get(id)!;

  afterAll(async () => {
    const stream = redis.scanStream({ match: `${prefix}:*`, count: 500 });
    for await (const batch of stream as AsyncIterable<string[]>) if (batch.length > 0) await redis.del(...batch);
    redis.disconnect();
  });

  it('applies any arrival order within W exactly as the pure model does on the time-sorted stream, however it is cut into pipelines', async () => {
    await fc.assert(
      fc.asyncProperty(
        streamArb(),
        fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 5 }),
        async (events, sizes) => {
          const id = `u-${seq++}`;
          const all = events.map((e) => prepared(id, e));
          for (let i = 0, b = 0; i < all.length; b++) {
            const size = sizes[b % sizes.length]!;
            await store.apply(all.slice(i, i + size));
            i += size;
          }
          expectClose(await stored(id), model(events).interests);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('appends what a chunk adds, and another store reads the tails and continues exactly', async () => {
    let tails = 0;
    // one stream certain to append (clicks in order, one a chunk), beside the random ones: whether a
    // random run ends its first half on a tail is chance (a whole rewrite may come last)
    const inOrder: ScoringEvent[] = Array.from({ length: 24 }, (_, i) => ({
      type: 'click',
      target: targets[i % targets.length]!,
      tags: ['category:dress'],
      occurredMs: L + DAY + i * MIN,
      dwellMs: 0,
    }));
    await fc.assert(
      fc.asyncProperty(streamArb(), fc.integer({ min: 1, max: 6 }), async (events, size) => {
        const id = `tail-${seq++}`;
        const all = events.map((e) => prepared(id, e));
        const half = Math.floor(all.length / 2);
        for (let i = 0; i < half; i += size) {
          await store.apply(all.slice(i, i + size));
          const raw = (await redis.getBuffer(store.keys.person(id).state))!;
          const { packed } = decodeState(raw, timelineParams(options));
          if (packed!.bytes > packed!.snapshotBytes) tails++;
        }
        // a store that never saw the person (no cached state) decodes the tails, then continues
        const fresh = createInterestStore(redis, prefix, options);
        for (let i = half; i < all.length; i += size) await fresh.apply(all.slice(i, i + size));
        // a redelivery of everything is all duplicates
        expect((await fresh.apply(all)).duplicates).toBe(all.length);
        expectClose(await stored(id), model(events).interests);
      }),
      { numRuns: 40, examples: [[inOrder, 1]] },
    );
    expect(tails).toBeGreaterThan(0);
  });

  it('scores by event time: events arriving up to W behind the newest give the time-sorted stream’s scores', async () => {
    // events over six days; each arrives after every event older than (its time + a delay < W)
    const stream = fc.uniqueArray(
      fc
        .record({ e: eventArb(0).map((e) => e), day: fc.nat(5), delay: fc.integer({ min: 0, max: W - 1 }) })
        .map(({ e, day, delay }) => ({ e: { ...e, occurredMs: e.occurredMs + day * DAY }, delay })),
      { maxLength: 60, selector: ({ e }) => e.occurredMs },
    );
    let reordered = 0;
    await fc.assert(
      fc.asyncProperty(
        stream,
        fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 5 }),
        async (xs, sizes) => {
          const id = `t-${seq++}`;
          const arrival = [...xs].sort((a, b) => a.e.occurredMs + a.delay - (b.e.occurredMs + b.delay));
          const all = arrival.map(({ e }) => prepared(id, e));
          for (let i = 0, b = 0; i < all.length; b++) {
            const size = sizes[b % sizes.length]!;
            const r = await store.apply(all.slice(i, i + size));
            expect(r.arrivals.beyond_window).toBe(0);
            reordered += r.arrivals.reordered;
            i += size;
          }
          expectClose(await stored(id), model(xs.map(({ e }) => e)).interests);
        },
      ),
      { numRuns: 60 },
    );
    expect(reordered).toBeGreaterThan(0);
  });

  it('applies an event more than W behind on its own and reports it', async () => {
    const click: ScoringEvent = { type: 'click', target: targets[0]!, tags: ['category:dress'], occurredMs: L + DAY };
    const later: ScoringEvent = { type: 'purchase', target: targets[1]!, tags: [], occurredMs: L + DAY + W + 60 * MIN };
    const like: ScoringEvent = { type: 'like', target: targets[0]!, tags: [], occurredMs: L + DAY + MIN };
    await store.apply([prepared('u-late', click), prepared('u-late', later)]);
    const r = await store.apply([prepared('u-late', like)]);
    expect(r).toMatchObject({ applied: 1, arrivals: { in_order: 0, reordered: 0, beyond_window: 1 } });
    // the click's visit was forgotten with the horizon: the like is a visit of its own
    const alone = model([click, later]);
    const own = model([like]);
    for (const [tag, v] of own.interests) alone.interests.set(tag, (alone.interests.get(tag) ?? 0) + v);
    expectClose(await stored('u-late'), alone.interests);
  });

  it('refuses a zombie’s write: a scorer whose read is stale reads again, and every event counts once', async () => {
    const other = new Redis(process.env.REDIS_URL!);
    let interloper: (() => Promise<unknown>) | undefined;
    // the zombie's client: before its first guarded write, the new owner of the partition writes the same person
    const zombieClient = new Proxy(redis, {
      get(target, prop) {
        if (prop === 'pipeline') {
          return () => {
            const pipeline = target.pipeline();
            const exec = pipeline.exec.bind(pipeline);
            pipeline.exec = (async () => {
              const run = interloper;
              const writes = (pipeline as unknown as { _queue: { name: string }[] })._queue.some(
                (c) => c.name === 'evalsha' || c.name === 'eval',
              );
              if (run && writes) {
                interloper = undefined;
                await run();
              }
              return exec();
            }) as typeof pipeline.exec;
            return pipeline;
          };
        }
        const v = (target as unknown as Record<string | symbol, unknown>)[prop];
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as unknown as RedisClient;
    try {
      const zombie = createInterestStore(zombieClient, prefix, options);
      const owner = createInterestStore(other as unknown as RedisClient, prefix, options);
      const es = minuteApart(['click', 'like', 'share', 'follow']);
      const [e1, e2, e3, e4] = es.map((e, i) => prepared('u-zombie', e, `z-${i}`));
      // the owner was handed the zombie's chunk again (rebalance) plus one more event
      interloper = () => owner.apply([e1!, e2!, e3!]);
      const r = await zombie.apply([e1!, e2!, e4!]);
      expect(interloper).toBeUndefined(); // the owner did write in between
      expect(r).toMatchObject({ applied: 1, duplicates: 2 });
      expectClose(await stored('u-zombie'), model(es).interests);
      expect(
        (await readAppliedDigests(redis as unknown as RedisClient, store.keys, ['u-zombie'])).get('u-zombie')!.size,
      ).toBe(4);
    } finally {
      other.disconnect();
    }
  });

  it('refuses a stale write over an existing state (the lean write): the store reads again, and every event counts once', async () => {
    // both stores have written the person, so each next write is the lean one (a state with scores exists);
    // `zombie` still holds the version it wrote when `owner` writes over it
    const zombie = createInterestStore(redis, prefix, options);
    const owner = createInterestStore(redis, prefix, options);
    const es = minuteApart(['click', 'like', 'share', 'click']);
    const [e1, e2, e3, e4] = es.map((e, i) => prepared('u-stale', e, `s-${i}`));
    await zombie.apply([e1!]);
    await owner.apply([e2!]);
    await owner.apply([e3!]);
    // the zombie's cached state is two versions old: its write must fail and it must read the owner's
    expect(await zombie.apply([e4!])).toMatchObject({ applied: 1, duplicates: 0 });
    expectClose(await stored('u-stale'), model(es).interests);
    expect(
      (await readAppliedDigests(redis as unknown as RedisClient, store.keys, ['u-stale'])).get('u-stale')!.size,
    ).toBe(4);
  });

  it('moves a person from the layout before event time to the state on first touch', async () => {
    const id = 'u-legacy';
    const p = store.keys.person(id);
    const click: ScoringEvent = { type: 'click', target: targets[0]!, tags: ['category:dress'], occurredMs: L + DAY };
    const follow: ScoringEvent = {
      type: 'follow',
      target: targets[1]!,
      tags: ['brand:acme'],
      occurredMs: L + DAY + MIN,
    };
    const old = model([click, follow]);
    const v = old.visits.get('product:p-1')!;
    // what the Lua model of the previous version stored for these two events
    await redis.zadd(p.interests, ...[...old.interests].flatMap(([tag, score]) => [score, tag]));
    await redis.hset(
      p.visits,
      'product:p-1',
      `${[v.start, v.fstart, v.last, 0, 0, 0, 0, -1].join('|')}\n${v.tags.join('\t')}`,
    );
    await redis.hset(p.follows, 'product:p-2', `${old.follows.get('product:p-2')![0]!.inc}\tbrand:acme`);
    await redis.zadd(p.seen, Date.now(), 'test|legacy-click');
    const like: ScoringEvent = { type: 'like', target: targets[0]!, tags: [], occurredMs: L + DAY + 2 * MIN };
    const unfollow: ScoringEvent = { type: 'unfollow', target: targets[1]!, tags: [], occurredMs: L + DAY + 3 * MIN };
    // the click redelivered: its old dedupe record holds
    const r = await store.apply([prepared(id, click, 'legacy-click'), prepared(id, like), prepared(id, unfollow)]);
    expect(r).toMatchObject({ applied: 2, duplicates: 1 });
    // the like joined the stored open visit, the unfollow removed the stored follow
    expectClose(await stored(id), model([click, follow, like, unfollow]).interests);
    expect(await redis.exists(p.visits, p.follows, p.seen)).toBe(0);
    expect(await redis.exists(p.state)).toBe(1);
  });

  // a click, and a follow a minute later: the history of the people written by earlier versions below
  const clickThenFollow: [ScoringEvent, ScoringEvent] = [
    { type: 'click', target: targets[0]!, tags: ['category:dress'], occurredMs: L + DAY },
    { type: 'follow', target: targets[1]!, tags: ['brand:acme'], occurredMs: L + DAY + MIN },
  ];

  it('reads a JSON state of the previous version and writes it back packed', async () => {
    const id = 'u-json';
    const p = store.keys.person(id);
    const [click, follow] = clickThenFollow;
    await store.apply([prepared(id, click, 'json-click'), prepared(id, follow)]);
    // the same state as the previous version wrote it (`version|json`)
    const packed = (await redis.getBuffer(p.state))!;
    const { version, state, seen } = decodeState(packed, scoring.decay);
    await redis.set(p.state, encodeJsonState(version, state, seen));
    const like: ScoringEvent = { type: 'like', target: targets[0]!, tags: [], occurredMs: L + DAY + 2 * MIN };
    const fresh = createInterestStore(redis, prefix, options); // no cached state
    const r = await fresh.apply([prepared(id, click, 'json-click'), prepared(id, like)]);
    expect(r).toMatchObject({ applied: 1, duplicates: 1 });
    expectClose(await stored(id), model([click, follow, like]).interests);
    const after = (await redis.getBuffer(p.state))!;
    expect(after[after.indexOf('|') + 1]).toBe(3);
  });

  it('reads a person a version before wrote (state without scores, `:int` beside it) from `:int`, and moves it to the state at its next write', async () => {
    const id = 'u-int';
    const p = store.keys.person(id);
    const [click, follow] = clickThenFollow;
    await store.apply([prepared(id, click, 'int-click'), prepared(id, follow)]);
    expect(await redis.exists(p.interests)).toBe(0); // the scores are in the state only
    const now = await stored(id);
    // as the version before kept it: the state without its scores, and its scores in `:int`
    const { version, state, seen } = decodeState((await redis.getBuffer(p.state))!, timelineParams(options));
    await redis.set(p.state, encodeState(version, state, seen));
    expect(storedScores((await redis.getBuffer(p.state))!)).toBeUndefined();
    expect(await stored(id)).toEqual(new Map()); // nothing left to read the scores from but `:int`...
    await redis.zadd(p.interests, ...[...now].flatMap(([tag, score]) => [score, tag]));
    expect(await stored(id)).toEqual(now); // ...which readers read
    const decay = scoring.decay;
    const read = await readInterests(redis, store.keys, id, { nowMs: L, limit: 10, decay, valueScale: 10 });
    expect(read.map((i) => i.tag)).toEqual((await strongestTags(redis, store.keys, id, 10)).map((t) => t.tag));
    expect(read.map((i) => i.tag)).toEqual(
      (await redis.zrevrange(p.interests, 0, -1)).slice(0, 10), // Redis' order
    );
    const like: ScoringEvent = { type: 'like', target: targets[0]!, tags: [], occurredMs: L + DAY + 2 * MIN };
    const fresh = createInterestStore(redis, prefix, options); // no cached state
    expect(await fresh.apply([prepared(id, click, 'int-click'), prepared(id, like)])).toMatchObject({
      applied: 1,
      duplicates: 1,
    });
    expectClose(await stored(id), model([click, follow, like]).interests);
    // written whole with its scores, and `:int` gone; the next chunk appends a tail that carries its changes
    expect(await redis.exists(p.interests)).toBe(0);
    const share: ScoringEvent = { type: 'share', target: targets[0]!, tags: [], occurredMs: L + DAY + 3 * MIN };
    await fresh.apply([prepared(id, share)]);
    const raw = (await redis.getBuffer(p.state))!;
    expect(decodeState(raw, timelineParams(options)).packed!.bytes).toBeGreaterThan(
      decodeState(raw, timelineParams(options)).packed!.snapshotBytes,
    );
    expectClose(await stored(id), model([click, follow, like, share]).interests);
  });

  it('reads the same interests over several connections as over one, each person with their own, whatever their layout', async () => {
    const [click, follow] = clickThenFollow;
    const people = Array.from({ length: 7 }, (_, i) => `u-conn-${i}`);
    // people with a state of their own (different events each), one with scores in `:int` only, one unknown
    for (const [i, id] of people.slice(0, 5).entries())
      await store.apply([prepared(id, { ...click, target: targets[i]! }), prepared(id, follow)]);
    await redis.zadd(store.keys.interests(people[5]!), 7.5, 'category:only-int');
    const extra = [redis.duplicate(), redis.duplicate(), redis.duplicate()];
    try {
      const one = await readStoredInterests(redis, store.keys, people);
      expect(one.get(people[5]!)).toEqual(new Map([['category:only-int', 7.5]]));
      expect(one.get(people[6]!)).toEqual(new Map());
      expect(new Set([...one.values()].map((m) => JSON.stringify([...m])).slice(0, 5)).size).toBe(5);
      // 1 to 3 more connections: shares of 7 people that do not divide evenly, and more connections than people
      for (const n of [1, 2, 3])
        expect(await readStoredInterests(redis, store.keys, people, extra.slice(0, n))).toEqual(one);
      expect(await readStoredInterests(redis, store.keys, people.slice(0, 2), extra)).toEqual(
        new Map([...one].slice(0, 2)),
      );
    } finally {
      for (const conn of extra) conn.disconnect();
    }
  });

  it("honours an older version's dedupe member while the state may hold one, and stops looking once it cannot", async () => {
    const click: ScoringEvent = { type: 'click', target: targets[0]!, tags: ['category:dress'], occurredMs: L + DAY };
    const at = Math.floor(Date.now() / 1000) * 1000;
    // what an older version recorded for event `old-1` (source|eventId), in the JSON form it wrote
    const seen = new Map([[digestOf('test|old-1'), at]]);
    const withMembers = (id: string, eventId: string): PreparedEvent => ({
      ...prepared(id, click, `${eventId}@${id}`),
      legacyMember: `test|${eventId}`,
    });
    await redis.set(store.keys.person('u-older').state, encodeJsonState('v0', emptyState(), seen));
    // the same record in a state this version began (it says no older member can be there): not looked for
    await redis.set(
      store.keys.person('u-newer').state,
      encodeState('v0', emptyState(), seen, { legacyUntil: -Infinity }),
    );
    const fresh = createInterestStore(redis, prefix, options);
    const r = await fresh.apply([withMembers('u-older', 'old-1'), withMembers('u-newer', 'old-1')]);
    expect(r).toMatchObject({ applied: 1, duplicates: 1 });
    expect(await stored('u-older')).toEqual(new Map());
    expectClose(await stored('u-newer'), model([click]).interests);
    // once the window has passed the older records, the state is written as holding none
    const later = { ...withMembers('u-older', 'new-1'), receivedMs: at + options.dedupeWindowMs + 1000 };
    await fresh.apply([later]);
    const back = decodeState((await redis.getBuffer(store.keys.person('u-older').state))!, timelineParams(options));
    expect(back.legacyUntil).toBe(-Infinity);
    expect(back.seen.has(digestOf('test|old-1'))).toBe(false);
  });

  it('scores and merges people whose ids contain braces', async () => {
    const odd = ['}x', '{y', 'a}b{c'];
    const click = (i: number): ScoringEvent => ({
      type: 'click',
      target: targets[i]!,
      tags: ['category:dress'],
      occurredMs: L + DAY + i * MIN,
    });
    await store.apply(odd.map((id, i) => prepared(id, click(i))));
    for (const [i, id] of odd.entries()) expectClose(await stored(id), model([click(i)]).interests);
    await store.merge('}x', '{y');
    expectClose(await stored('{y'), model([click(0), click(1)]).interests);
    expect(await store.resolve('}x')).toBe('{y');
  });

  it('counts an event delivered twice once, in one pipeline or in two', async () => {
    const e = prepared('u-dup', { type: 'share', target: targets[0]!, tags: ['category:dress'], occurredMs: L + DAY });
    const first = await store.apply([e, e]);
    const again = await store.apply([e]);
    expect([first.applied, first.duplicates, again.applied, again.duplicates]).toEqual([1, 1, 0, 1]);
    expectClose(
      await stored('u-dup'),
      model([{ type: 'share', target: targets[0]!, tags: ['category:dress'], occurredMs: L + DAY }]).interests,
    );
  });

  it('merges an anonymous profile into the user’s: interests add up, later and redelivered anonymous events count once on the user', async () => {
    await fc.assert(
      fc.asyncProperty(streamArb(0), streamArb(1), streamArb(2), fc.nat(), async (before, user, after, cut) => {
        const anon = `a-${seq++}`;
        const known = `u-${seq++}`;
        const anonBefore = before.map((e) => prepared(anon, e));
        await store.apply(anonBefore);
        await store.apply(user.map((e) => prepared(known, e)));
        // the merge races with the first part of the later anonymous events (another partition, another scorer)
        const later = after.map((e) => prepared(anon, e));
        const k = cut % (later.length + 1);
        await Promise.all([store.merge(anon, known), store.apply(later.slice(0, k))]);
        await store.apply(later.slice(k));
        // a redelivery of everything the anonymous id ever sent changes nothing
        const redelivered = await store.apply([...anonBefore, ...later]);
        expect(redelivered.applied).toBe(0);
        // each racing event landed either on the anonymous profile before the freeze or on the user
        // after the import; all are within W of each other, so the user scores the time-sorted union
        expectClose(await stored(known), model([...before, ...user, ...after]).interests);
        expect(await redis.exists(store.keys.interests(anon))).toBe(0);
        expect(await store.resolve(anon)).toBe(known);
      }),
      { numRuns: 25 },
    );
  });

  it('merges like the pure model of the time-sorted union when the merge happens between the two parts of a stream', async () => {
    await fc.assert(
      fc.asyncProperty(streamArb(0), streamArb(1), streamArb(2), async (before, user, after) => {
        const anon = `a-${seq++}`;
        const known = `u-${seq++}`;
        await store.apply(before.map((e) => prepared(anon, e)));
        await store.apply(user.map((e) => prepared(known, e)));
        await store.merge(anon, known);
        await store.apply(after.map((e) => prepared(anon, e)));
        expectClose(await stored(known), model([...before, ...user, ...after]).interests);
      }),
      { numRuns: 30 },
    );
  });

  it('applies an anonymous event that arrives between freeze and import only after the import', async () => {
    const anon = `a-${seq++}`;
    const known = `u-${seq++}`;
    const click: ScoringEvent = { type: 'click', target: targets[0]!, tags: ['category:dress'], occurredMs: L + DAY };
    const dwell: ScoringEvent = {
      type: 'dwell',
      target: targets[0]!,
      tags: [],
      occurredMs: L + DAY + MIN,
      dwellMs: 70_000,
    };
    await store.apply([prepared(anon, click)]);
    // the merge's first step alone, as if its scorer stalled right after it
    await redis.set(store.keys.person(anon).alias, known);
    const r = await store.apply([prepared(anon, dwell)]);
    expect(r).toMatchObject({ applied: 1, duplicates: 0, redirected: 1 });
    // the dwell joined the anonymous click's visit (imported first): one visit of weight 1 × 2
    expectClose(await stored(known), model([click, dwell]).interests);
    await store.merge(anon, known); // the stalled merge finishing adds nothing more
    expectClose(await stored(known), model([click, dwell]).interests);
  });

  it('reads a merged anonymous id as the user it was merged into', async () => {
    const anon = `a-${seq++}`;
    await store.apply([prepared(anon, { type: 'purchase', target: targets[1]!, tags: [], occurredMs: L })]);
    await store.merge(anon, 'u-reader');
    const read = await readInterests(redis, store.keys, anon, {
      nowMs: L,
      limit: 10,
      decay: scoring.decay,
      valueScale: 10,
    });
    expect(read).toEqual([{ tag: 'product:p-2', dimension: 'product', score: 4, value: 10 * Math.tanh(0.4) }]);
  });

  it('keeps at most the configured number of tags per person, dropping the lowest scores', async () => {
    const small = createInterestStore(redis, prefix, { ...options, maxTagsPerPerson: 200 });
    const events = Array.from({ length: 260 }, (_, i) =>
      prepared('u-cap', {
        type: 'purchase',
        target: { type: 'product', id: `q-${i}` },
        tags: [],
        occurredMs: L + i * MIN,
      }),
    );
    await small.apply(events);
    const flat = await stored('u-cap');
    expect(flat.size).toBe(200);
    expect(flat.has('product:q-0')).toBe(false); // the oldest purchases have the lowest scores
    expect(flat.has('product:q-259')).toBe(true);
  });

  it('finds catalog tags for targets that have an entry', async () => {
    await writeCatalog(redis, store.keys, 'product:p-9', ['category:shoes', 'brand:zed']);
    const found = await lookupCatalog(redis, store.keys, ['product:p-9', 'product:none', 'product:p-9']);
    expect([...found]).toEqual([['product:p-9', ['category:shoes', 'brand:zed']]]);
  });
});
