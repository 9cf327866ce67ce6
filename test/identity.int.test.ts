/**
 * The identity rule is written once (`linkOf` in @pstream/events) and enforced by two stores:
 * Redis aliases (the scorer) and Postgres identities (the segmenter). This test feeds the same
 * identify/alias/event streams to both consumers' apply steps and checks that every id resolves
 * to the same person in both, and to the person a plain model of the rule gives.
 */
import { linkOf, linkPassesMergedIdCap, MAX_MERGED_IDS, type TopicMessage } from '@pstream/events';
import { createInterestStore, type InterestStore } from '@pstream/interest-store';
import { DEFAULT_RULES } from '@pstream/lifecycle';
import { createPool, createRedis, type Pool, type Redis } from '@pstream/platform';
import { createConverter, createSegmentStore, migrate, type SegmentStore } from '@pstream/profile-store';
import { loadConfig, storeOptions, type ScorerConfig } from '@pstream/scorer/config';
import { createChunkApplier } from '@pstream/scorer/processor';
import fc from 'fast-check';
import { createSandbox, type Sandbox, silentLog } from '@pstream/testkit';

const AT = '2026-06-01T00:00:00.000Z';

/**
 * Where each id ends up by the rule alone: first link wins, `to` resolved first, no loops, and a
 * link that would take a profile past `cap` merged ids is refused.
 */
function modelOf(messages: readonly TopicMessage[], cap = MAX_MERGED_IDS): (id: string) => string {
  const parent = new Map<string, string>();
  const resolve = (id: string): string => {
    let x = id;
    while (parent.has(x)) x = parent.get(x)!;
    return x;
  };
  for (const m of messages) {
    const link = linkOf(m);
    if (!link || parent.has(link.from)) continue;
    const to = resolve(link.to);
    if (to === link.from) continue;
    const mergedInto = (root: string) => [...parent.keys()].filter((id) => resolve(id) === root).length;
    if (!linkPassesMergedIdCap(mergedInto(to), 1 + mergedInto(link.from), cap)) parent.set(link.from, to);
  }
  return resolve;
}

type Step =
  | { kind: 'identify'; user: number; anon: number | 'none' | 'placeholder' }
  | { kind: 'alias'; user: number; previous: number; previousIsUser: boolean }
  | { kind: 'event'; anon: number };

const USERS = 4;
const ANONS = 5;
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constant('identify' as const),
    user: fc.nat(USERS - 1),
    anon: fc.oneof(fc.nat(ANONS - 1), fc.constantFrom('none' as const, 'placeholder' as const)),
  }),
  fc.record({
    kind: fc.constant('alias' as const),
    user: fc.nat(USERS - 1),
    previous: fc.nat(ANONS - 1),
    previousIsUser: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('event' as const), anon: fc.nat(ANONS - 1) }),
);

describe('one identity rule, two stores', () => {
  let box: Sandbox;
  let config: ScorerConfig;
  let redis: Redis;
  let pool: Pool;
  let interests: InterestStore;
  let facts: SegmentStore;
  let applyToRedis: ReturnType<typeof createChunkApplier>;
  /** The same pair of stores with a merged-id cap of 2, which the streams below often reach. */
  const SMALL_CAP = 2;
  let capped: { interests: InterestStore; facts: SegmentStore; applyToRedis: ReturnType<typeof createChunkApplier> };
  let run = 0;

  beforeAll(async () => {
    box = await createSandbox(1);
    config = loadConfig(box.env);
    redis = createRedis(config, 'test-identity');
    pool = createPool(process.env.DATABASE_URL!, box.env.PG_SCHEMA!, `test-identity-${box.id}`, 2);
    await migrate(pool, box.env.PG_SCHEMA!);
    interests = createInterestStore(redis, config.REDIS_PREFIX, storeOptions(config));
    applyToRedis = createChunkApplier(interests, redis, config, silentLog);
    facts = createSegmentStore({
      pool,
      rules: DEFAULT_RULES,
      convert: createConverter('CNY', new Map()),
      log: silentLog,
    });
    const small = { ...config, MAX_MERGED_IDS: SMALL_CAP };
    const smallInterests = createInterestStore(redis, config.REDIS_PREFIX, storeOptions(small));
    capped = {
      interests: smallInterests,
      applyToRedis: createChunkApplier(smallInterests, redis, small, silentLog),
      facts: createSegmentStore({
        pool,
        rules: DEFAULT_RULES,
        convert: createConverter('CNY', new Map()),
        log: silentLog,
        maxMergedIds: SMALL_CAP,
      }),
    };
  }, 60_000);

  afterAll(async () => {
    redis?.disconnect();
    await pool?.end();
    await box?.cleanup();
  });

  /** Builds the messages of one stream; ids carry the run number so streams never meet. */
  function messagesOf(steps: readonly Step[], r: number): { messages: TopicMessage[]; ids: string[] } {
    const user = (i: number) => `r${r}-u${i}`;
    const anon = (i: number) => `r${r}-a${i}`;
    const messages = steps.map((s, i): TopicMessage => {
      const base = { v: 1 as const, eventId: `r${r}-${i}`, source: 'test', occurredAt: AT, receivedAt: AT };
      if (s.kind === 'identify') {
        const anonymousId = s.anon === 'none' ? undefined : s.anon === 'placeholder' ? 'anonymous' : anon(s.anon);
        return {
          ...base,
          kind: 'identify',
          userId: user(s.user),
          ...(anonymousId !== undefined && { anonymousId }),
          profileKey: user(s.user),
          traits: {},
        };
      }
      if (s.kind === 'alias') {
        const previousId = s.previousIsUser ? user(s.previous % USERS) : anon(s.previous);
        return { ...base, kind: 'alias', userId: user(s.user), previousId, profileKey: user(s.user) };
      }
      return {
        ...base,
        kind: 'event',
        type: 'click',
        anonymousId: anon(s.anon),
        profileKey: anon(s.anon),
        target: { type: 'product', id: 'p-1' },
        tags: ['category:dress'],
      } as TopicMessage;
    });
    const ids = [
      ...Array.from({ length: USERS }, (_, i) => user(i)),
      ...Array.from({ length: ANONS }, (_, i) => anon(i)),
    ];
    return { messages, ids };
  }

  async function postgresKeys(ids: string[]): Promise<Map<string, string>> {
    // The test reads the table the store wrote; the store itself exposes only the §5.1 read.
    const { rows } = await pool.query<{ id: string; profile_key: string }>(
      'SELECT id, profile_key FROM identities WHERE id = ANY($1::text[])',
      [ids],
    );
    return new Map(rows.map((r) => [r.id, r.profile_key]));
  }

  /**
   * Feeds one stream to both stores, the segmenter in chunks, and holds every id's person in each to the model with
   * `cap`.
   */
  async function check(
    stores: { interests: InterestStore; facts: SegmentStore; applyToRedis: ReturnType<typeof createChunkApplier> },
    cap: number,
    steps: Step[],
    chunk: number,
  ) {
    const { interests, facts, applyToRedis } = stores;
    run += 1;
    const { messages, ids } = messagesOf(steps, run);
    await applyToRedis(messages);
    // The segmenter applies a partition in chunks, each one transaction; vary the chunk size.
    for (let start = 0; start < messages.length; start += chunk) {
      const part = messages.slice(start, start + chunk);
      const offsets = part.map((value, i) => ({ value, offset: String(start + i) }));
      await facts.apply(
        offsets,
        { groupId: `g-${run}`, topic: 't', partition: 0, lastOffset: String(start + part.length - 1) },
        Date.parse(AT),
      );
    }
    const expected = modelOf(messages, cap);
    const pg = await postgresKeys(ids);
    for (const id of ids) {
      const inRedis = await interests.resolve(id);
      const inPostgres = pg.get(id) ?? id;
      expect({ id, inRedis, inPostgres }).toEqual({ id, inRedis: expected(id), inPostgres: expected(id) });
    }
  }

  it('gives every id the same person in Redis and Postgres, for any stream of identify, alias and events', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 1, maxLength: 24 }),
        fc.integer({ min: 1, max: 6 }),
        (steps, chunk) => check({ interests, facts, applyToRedis }, MAX_MERGED_IDS, steps, chunk),
      ),
      { numRuns: 40, seed: 11 },
    );
  }, 120_000);

  it(`refuses the same links in both stores under a merged-id cap of ${SMALL_CAP} (links bringing merged ids count them all)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 1, maxLength: 24 }),
        fc.integer({ min: 1, max: 6 }),
        (steps, chunk) => check(capped, SMALL_CAP, steps, chunk),
      ),
      { numRuns: 40, seed: 12 },
    );
  }, 120_000);

  it('links nothing for a placeholder or self link, and keeps the first link of an id', () => {
    const m = (kind: 'identify' | 'alias', userId: string, other: string): TopicMessage =>
      kind === 'identify'
        ? {
            v: 1,
            kind,
            eventId: 'e',
            source: 's',
            userId,
            anonymousId: other,
            profileKey: userId,
            occurredAt: AT,
            receivedAt: AT,
            traits: {},
          }
        : {
            v: 1,
            kind,
            eventId: 'e',
            source: 's',
            userId,
            previousId: other,
            profileKey: userId,
            occurredAt: AT,
            receivedAt: AT,
          };
    expect(linkOf(m('identify', 'u', 'anonymous'))).toBeUndefined();
    expect(linkOf(m('alias', 'u', 'u'))).toBeUndefined();
    expect(linkOf(m('alias', 'anonymous', 'a'))).toBeUndefined();
    expect(linkOf(m('identify', 'u', 'a'))).toEqual({ from: 'a', to: 'u' });
    const resolve = modelOf([
      m('identify', 'u1', 'a'),
      m('identify', 'u2', 'a'),
      m('alias', 'u1', 'u2'),
      m('alias', 'u2', 'u1'),
    ]);
    expect([resolve('a'), resolve('u1'), resolve('u2')]).toEqual(['u1', 'u1', 'u1']);
  });
});
