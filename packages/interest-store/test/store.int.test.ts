import fc from 'fast-check';
import { Redis } from 'ioredis';
import { applyEvent, DEFAULT_WEIGHTS, decayParams, emptyModel, explicitTags, forwardWeight, mergeModels, targetTag, type PersonModel, type ScoringEvent, type ScoringParams } from '@pstream/scoring';
import { createInterestStore, lookupCatalog, readInterests, writeCatalog, type PreparedEvent, type StoreOptions } from '../src';
import { testId } from '../../../test/helpers';

const L = Date.parse('2026-01-01T00:00:00Z');
const MIN = 60_000;
const DAY = 86_400_000;
const scoring: ScoringParams = { weights: DEFAULT_WEIGHTS, visitGapMs: 30 * MIN, decay: decayParams('2026-01-01T00:00:00Z', 30), maxOpenVisits: 4 };
const options: StoreOptions = { scoring, maxTagsPerPerson: 1000, visitTtlMs: DAY, dedupeWindowMs: 3 * DAY };

const targets = ['p-1', 'p-2', 'p-3', 'p-4', 'p-5', 'p-6'].map((id) => ({ type: 'product' as const, id }));
const eventArb: fc.Arbitrary<ScoringEvent> = fc.record({
  type: fc.constantFrom('click', 'dwell', 'like', 'comment', 'share', 'favorite', 'follow', 'unfollow', 'purchase' as const),
  target: fc.constantFrom(...targets),
  tags: fc.subarray(['category:dress', 'brand:acme', 'style:casual', 'product:p-1']),
  occurredMs: fc.integer({ min: L + DAY, max: L + 2 * DAY }),
  dwellMs: fc.integer({ min: 0, max: 90_000 }),
});
// mostly in time order, with some late events, as a partition delivers them
const streamArb = fc.array(eventArb, { maxLength: 50 }).chain((es) =>
  fc.boolean().map((shuffle) => (shuffle ? es : [...es].sort((a, b) => a.occurredMs - b.occurredMs))),
);

let seq = 0;
function prepared(profileKey: string, e: ScoringEvent, id = `e${seq++}`): PreparedEvent {
  return {
    profileKey,
    member: `test|${id}`,
    receivedMs: Date.now(),
    type: e.type,
    occurredMs: e.occurredMs,
    forwardFactor: forwardWeight(1, e.occurredMs, scoring.decay),
    targetKey: targetTag(e.target),
    dwellMs: e.type === 'dwell' ? e.dwellMs : undefined,
    tags: explicitTags(e.tags, e.target),
  };
}
function model(events: ScoringEvent[], m = emptyModel()): PersonModel {
  for (const e of events) applyEvent(m, e.type === 'dwell' ? e : { ...e, dwellMs: undefined }, scoring);
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

describe('the interest store against real Redis', () => {
  const redis = new Redis(process.env.REDIS_URL!);
  const prefix = `test:${testId()}`;
  const store = createInterestStore(redis, prefix, options);
  const stored = async (id: string) => {
    const flat = await redis.zrange(store.keys.interests(id), 0, -1, 'WITHSCORES');
    const m = new Map<string, number>();
    for (let i = 0; i < flat.length; i += 2) m.set(flat[i]!, Number(flat[i + 1]));
    return m;
  };

  afterAll(async () => {
    const stream = redis.scanStream({ match: `${prefix}:*`, count: 500 });
    for await (const batch of stream as AsyncIterable<string[]>) if (batch.length > 0) await redis.del(...batch);
    redis.disconnect();
  });

  it('applies any stream exactly as the pure model does, however it is cut into pipelines', async () => {
    await fc.assert(
      fc.asyncProperty(streamArb, fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 5 }), async (events, sizes) => {
        const id = `u-${seq++}`;
        const all = events.map((e) => prepared(id, e));
        for (let i = 0, b = 0; i < all.length; b++) {
          const size = sizes[b % sizes.length]!;
          await store.apply(all.slice(i, i + size));
          i += size;
        }
        expectClose(await stored(id), model(events).interests);
      }),
      { numRuns: 40 },
    );
  });

  it('counts an event delivered twice once, in one pipeline or in two', async () => {
    const e = prepared('u-dup', { type: 'share', target: targets[0]!, tags: ['category:dress'], occurredMs: L + DAY });
    const first = await store.apply([e, e]);
    const again = await store.apply([e]);
    expect([first.applied, first.duplicates, again.applied, again.duplicates]).toEqual([1, 1, 0, 1]);
    expectClose(await stored('u-dup'), model([{ type: 'share', target: targets[0]!, tags: ['category:dress'], occurredMs: L + DAY }]).interests);
  });

  it('merges an anonymous profile into the user’s: interests add up, later and redelivered anonymous events count once on the user', async () => {
    await fc.assert(
      fc.asyncProperty(streamArb, streamArb, streamArb, fc.nat(), async (before, user, after, cut) => {
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
        // after the import, in order: the result is the sequential merge at SOME split point j ≤ k
        const got = await stored(known);
        const splits = Array.from({ length: k + 1 }, (_, j) => mergedModel([...before, ...after.slice(0, j)], user, after.slice(j)));
        const matches = splits.filter((m) => {
          try {
            expectClose(got, m.interests);
            return true;
          } catch {
            return false;
          }
        });
        expect(matches.length).toBeGreaterThan(0);
        expect(await redis.exists(store.keys.interests(anon))).toBe(0);
        expect(await store.resolve(anon)).toBe(known);
      }),
      { numRuns: 25 },
    );
  });

  it('merges exactly like the pure model when the merge happens between the two parts of a stream', async () => {
    await fc.assert(
      fc.asyncProperty(streamArb, streamArb, streamArb, async (before, user, after) => {
        const anon = `a-${seq++}`;
        const known = `u-${seq++}`;
        await store.apply(before.map((e) => prepared(anon, e)));
        await store.apply(user.map((e) => prepared(known, e)));
        await store.merge(anon, known);
        await store.apply(after.map((e) => prepared(anon, e)));
        expectClose(await stored(known), mergedModel(before, user, after).interests);
      }),
      { numRuns: 30 },
    );
  });

  it('applies an anonymous event that arrives between freeze and import only after the import', async () => {
    const anon = `a-${seq++}`;
    const known = `u-${seq++}`;
    const click: ScoringEvent = { type: 'click', target: targets[0]!, tags: ['category:dress'], occurredMs: L + DAY };
    const dwell: ScoringEvent = { type: 'dwell', target: targets[0]!, tags: [], occurredMs: L + DAY + MIN, dwellMs: 70_000 };
    await store.apply([prepared(anon, click)]);
    // the merge's first step alone, as if its scorer stalled right after it
    await redis.set(store.keys.person(anon).alias, known);
    const r = await store.apply([prepared(anon, dwell)]);
    expect(r).toEqual({ applied: 1, duplicates: 0, redirected: 1 });
    // the dwell joined the anonymous click's visit (imported first): one visit of weight 1 × 2
    expectClose(await stored(known), model([click, dwell]).interests);
    await store.merge(anon, known); // the stalled merge finishing adds nothing more
    expectClose(await stored(known), model([click, dwell]).interests);
  });

  it('reads a merged anonymous id as the user it was merged into', async () => {
    const anon = `a-${seq++}`;
    await store.apply([prepared(anon, { type: 'purchase', target: targets[1]!, tags: [], occurredMs: L })]);
    await store.merge(anon, 'u-reader');
    const read = await readInterests(redis, store.keys, anon, { nowMs: L, limit: 10, decay: scoring.decay, valueScale: 10 });
    expect(read).toEqual([{ tag: 'product:p-2', dimension: 'product', score: 4, value: 10 * Math.tanh(0.4) }]);
  });

  it('keeps at most the configured number of tags per person, dropping the lowest scores', async () => {
    const small = createInterestStore(redis, prefix, { ...options, maxTagsPerPerson: 200 });
    const events = Array.from({ length: 260 }, (_, i) => prepared('u-cap', { type: 'purchase', target: { type: 'product', id: `q-${i}` }, tags: [], occurredMs: L + i * MIN }));
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

function mergedModel(before: ScoringEvent[], user: ScoringEvent[], after: ScoringEvent[]): PersonModel {
  const u = model(user);
  mergeModels(u, model(before), scoring);
  return model(after, u);
}
