/**
 * The interest store on a real Redis Cluster (`pnpm infra:up --cluster`): batches that span
 * every master, merges between people in different slots, catalog lookups across slots, the
 * rebuild's clear on every master, and WAIT for a replica — each equal to the pure model of the
 * time-sorted stream.
 */
import {
  createInterestStore,
  lookupCatalog,
  readInterests,
  writeCatalog,
  type PreparedEvent,
  type StoreOptions,
} from '@pstream/interest-store';
import { createRedis, isCluster, scanKeys, slotOf } from '@pstream/platform';
import {
  applyEvent,
  emptyModel,
  explicitTags,
  targetTag,
  type ScoringEvent,
  type ScoringParams,
} from '@pstream/scoring';
import { testId } from '@pstream/testkit';
import { CLUSTER_REDIS_NODES } from './support';
import { testScoringParams } from '@pstream/scoring/testing';

const L = Date.parse('2026-01-01T00:00:00Z');
const DAY = 86_400_000;
const scoring: ScoringParams = testScoringParams({ maxOpenVisits: 4 });
const options: StoreOptions = {
  scoring,
  maxTagsPerPerson: 1000,
  latenessMs: 2 * DAY,
  dedupeWindowMs: 3 * DAY,
  waitReplicas: 1,
};
const TYPES = ['click', 'like', 'share', 'follow', 'comment', 'unfollow', 'favorite'] as const;

function scoringEvent(i: number): ScoringEvent {
  return {
    type: TYPES[i % TYPES.length]!,
    target: { type: 'product', id: `p-${i % 4}` },
    tags: [`category:c${i % 3}`],
    occurredMs: L + DAY + i * 11 * 60_000,
    dwellMs: undefined,
  };
}

function prepared(profileKey: string, e: ScoringEvent, id: string): PreparedEvent {
  return {
    profileKey,
    member: `test|${id}`,
    receivedMs: Date.now(),
    type: e.type,
    occurredMs: e.occurredMs,
    targetKey: targetTag(e.target),
    dwellMs: undefined,
    tags: explicitTags(e.tags, e.target),
  };
}

function modelOf(events: ScoringEvent[]) {
  const m = emptyModel();
  for (const e of events) applyEvent(m, e, scoring);
  return m;
}

describe('interest store on a Redis Cluster', () => {
  const redis = createRedis(
    { REDIS_URL: 'redis://127.0.0.1:7101', REDIS_CLUSTER_NODES: CLUSTER_REDIS_NODES.split(',') },
    'store-cluster-test',
  );
  const prefix = `clstore:${testId()}`;
  const store = createInterestStore(redis, prefix, options);
  const PEOPLE = 60;
  const PER = 14;

  afterAll(async () => {
    for await (const batch of scanKeys(redis, `${prefix}:*`)) await Promise.all(batch.map((k) => redis.unlink(k)));
    redis.disconnect();
  });

  it('applies one batch spanning every master in order per person, exactly as the pure model', async () => {
    expect(isCluster(redis)).toBe(true);
    const people = Array.from({ length: PEOPLE }, (_, i) => `u-${i}`);
    // interleaved as a partition delivers them: person by person within each round
    const batch: PreparedEvent[] = [];
    for (let i = 0; i < PER; i++) for (const p of people) batch.push(prepared(p, scoringEvent(i), `${p}-${i}`));
    const first = await store.apply(batch);
    expect(first).toMatchObject({ applied: PEOPLE * PER, duplicates: 0, redirected: 0 });
    if (!isCluster(redis)) throw new Error('not a Cluster client');
    const owners = new Set(people.map((p) => redis.slots[slotOf(store.keys.interests(p))]?.[0]));
    expect(owners.size).toBe(3); // the batch really went to the three masters
    expect(await store.apply(batch)).toMatchObject({ applied: 0, duplicates: PEOPLE * PER, redirected: 0 });
    const want = modelOf(Array.from({ length: PER }, (_, i) => scoringEvent(i))).interests;
    for (const p of people) {
      const flat = await redis.zrange(store.keys.interests(p), 0, -1, 'WITHSCORES');
      const got = new Map<string, number>();
      for (let i = 0; i < flat.length; i += 2) got.set(flat[i]!, Number(flat[i + 1]));
      expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
      for (const [tag, score] of want) expect(got.get(tag)).toBeCloseTo(score, 9);
    }
  });

  it('merges people of different slots and reads the merged profile through the alias', async () => {
    const a = 'anon-merge';
    const u = 'user-merge';
    expect(slotOf(store.keys.interests(a))).not.toBe(slotOf(store.keys.interests(u)));
    const ea = [0, 1, 2].map(scoringEvent);
    const eu = [3, 4, 5, 6].map(scoringEvent);
    await store.apply([...ea.map((e, i) => prepared(a, e, `a-${i}`)), ...eu.map((e, i) => prepared(u, e, `u-${i}`))]);
    expect(await store.merge(a, u)).toEqual({ mergedInto: u });
    const read = await readInterests(redis, store.keys, a, {
      nowMs: L + 2 * DAY,
      limit: 100,
      decay: scoring.decay,
      valueScale: 10,
    });
    // both within the lateness window: the merged profile scores the time-sorted union
    const merged = modelOf([...ea, ...eu]);
    const live = [...merged.interests].filter(([, score]) => Math.abs(score) > 1e-9);
    expect(read.map((r) => r.tag).sort()).toEqual(live.map(([tag]) => tag).sort());
  });

  it('looks up catalog entries across slots, and clear() empties every master but keeps the catalog', async () => {
    const targets = Array.from({ length: 40 }, (_, i) => `product:c-${i}`);
    for (const t of targets) await writeCatalog(redis, store.keys, t, [`category:${t}`]);
    const found = await lookupCatalog(redis, store.keys, [...targets, 'product:none']);
    expect(found.size).toBe(40);
    for (const t of targets) expect(found.get(t)).toEqual([`category:${t}`]);
    const removed = await store.clear();
    expect(removed).toBeGreaterThan(PEOPLE * 2); // each person's state and interests, and the per-tag index
    const left: string[] = [];
    for await (const batch of scanKeys(redis, `${prefix}:p:*`)) left.push(...batch);
    expect(left).toEqual([]);
    expect((await lookupCatalog(redis, store.keys, targets)).size).toBe(40);
  });
});
