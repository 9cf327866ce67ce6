import { dedupeId, lifecycleMessageSchema, type TopicMessage } from '@pstream/events';
import { DAY_MS, DEFAULT_RULES } from '@pstream/lifecycle';
import { createPool, type Pool } from '@pstream/platform';
import { createSandbox, type Sandbox, silentLog, waitFor } from '@pstream/testkit';
import { createConverter } from '../src/fold';
import { migrate } from '../src/migrate';
import { createSegmentStore, type Offsetted, type SegmentStore } from '../src/store';

const T0 = Date.parse('2026-06-01T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

let seq = 0;
function event(
  type: string,
  who: { userId?: string; anonymousId?: string },
  atMs: number,
  extra: Record<string, unknown> = {},
): TopicMessage {
  seq += 1;
  return {
    v: 1,
    kind: 'event',
    eventId: `e-${seq}`,
    source: 'test',
    type,
    ...who,
    profileKey: (who.userId ?? who.anonymousId)!,
    occurredAt: iso(atMs),
    receivedAt: iso(atMs),
    target: { type: 'product', id: 'p-1' },
    tags: ['category:dress'],
    ...extra,
  } as TopicMessage;
}
const buy = (who: { userId?: string; anonymousId?: string }, atMs: number, amount = 100, currency = 'CNY') =>
  event('purchase', who, atMs, { amount, currency });
function identify(userId: string, anonymousId: string | undefined, traits: Record<string, unknown> = {}): TopicMessage {
  seq += 1;
  return {
    v: 1,
    kind: 'identify',
    eventId: `i-${seq}`,
    source: 'test',
    userId,
    ...(anonymousId !== undefined && { anonymousId }),
    profileKey: userId,
    occurredAt: iso(T0),
    receivedAt: iso(T0),
    traits,
  } as TopicMessage;
}
function alias(userId: string, previousId: string): TopicMessage {
  seq += 1;
  return {
    v: 1,
    kind: 'alias',
    eventId: `a-${seq}`,
    source: 'test',
    userId,
    previousId,
    profileKey: userId,
    occurredAt: iso(T0),
    receivedAt: iso(T0),
  };
}

describe('segment store against real Postgres', () => {
  let box: Sandbox;
  let pool: Pool;
  let store: SegmentStore;
  const offsets = new Map<number, number>();

  /** Applies messages as the next chunk of `partition`, at wall-clock `nowMs`. */
  async function apply(messages: TopicMessage[], nowMs = T0, partition = 0) {
    const start = offsets.get(partition) ?? 0;
    offsets.set(partition, start + messages.length);
    const chunk: Offsetted[] = messages.map((value, i) => ({ value, offset: String(start + i) }));
    return store.apply(
      chunk,
      { groupId: 'g', topic: 't', partition, lastOffset: String(start + messages.length - 1) },
      nowMs,
    );
  }
  async function person(key: string) {
    const { rows } = await pool.query('SELECT * FROM people WHERE profile_key = $1', [key]);
    return rows[0] as Record<string, unknown> | undefined;
  }
  async function counts(key: string) {
    const { rows } = await pool.query<{ type: string; n: number }>(
      'SELECT type, n FROM event_counts WHERE profile_key = $1',
      [key],
    );
    return Object.fromEntries(rows.map((r) => [r.type, r.n]));
  }
  async function transitions(key: string) {
    const { rows } = await pool.query(
      "SELECT from_stage, to_stage, reason FROM lifecycle_transitions WHERE profile_key = $1 AND kind = 'stage' ORDER BY id",
      [key],
    );
    return rows.map((r) => `${r.from_stage ?? '-'}>${r.to_stage}:${r.reason}`);
  }

  beforeAll(async () => {
    box = await createSandbox(1);
    pool = createPool(process.env.DATABASE_URL!, box.env.PG_SCHEMA!, `test-store-${box.id}`, 6);
    await migrate(pool, box.env.PG_SCHEMA!);
    store = createSegmentStore({
      pool,
      rules: DEFAULT_RULES,
      convert: createConverter('CNY', new Map([['USD', 7]])),
      log: silentLog,
    });
  }, 60_000);

  afterAll(async () => {
    await pool?.end();
    await box?.cleanup();
  });

  it('keeps first seen, last active, counts, purchases in the base currency, follows and daily aggregates', async () => {
    const u = { userId: 'facts-1' };
    await apply([
      event('click', u, T0 - 3 * DAY_MS),
      event('like', u, T0 - 1 * DAY_MS),
      buy(u, T0 - 2 * DAY_MS, 100, 'CNY'),
      buy(u, T0 - 2 * DAY_MS, 10, 'USD'),
      buy(u, T0 - 2 * DAY_MS, 5, 'JPY'),
      event('follow', u, T0 - 5 * DAY_MS, { target: { type: 'shop', id: 's-1' } }),
      event('follow', u, T0 - 4 * DAY_MS, { target: { type: 'shop', id: 's-2' } }),
      event('unfollow', u, T0 - 3 * DAY_MS, { target: { type: 'shop', id: 's-2' } }),
    ]);
    // a late, older follow of s-2 does not undo the newer unfollow
    await apply([
      event('follow', u, T0 - 10 * DAY_MS, { target: { type: 'shop', id: 's-2' } }),
      event('click', u, T0 - 30 * DAY_MS),
    ]);
    const p = (await person('facts-1'))!;
    expect((p.first_seen_at as Date).getTime()).toBe(T0 - 30 * DAY_MS);
    expect((p.last_active_at as Date).getTime()).toBe(T0 - 1 * DAY_MS);
    expect(p.purchases).toBe(3);
    expect(p.monetary_total).toBe(170); // 100 CNY + 10 USD · 7; the JPY purchase has no rate
    expect(p.unconverted_purchases).toBe(1);
    expect((p.first_purchase_at as Date).getTime()).toBe(T0 - 2 * DAY_MS);
    expect(await counts('facts-1')).toEqual({ click: 2, like: 1, purchase: 3, follow: 3, unfollow: 1 });
    const { rows: follows } = await pool.query(
      'SELECT target_id, following FROM follows WHERE profile_key = $1 ORDER BY target_id',
      ['facts-1'],
    );
    expect(follows).toEqual([
      { target_id: 's-1', following: true },
      { target_id: 's-2', following: false },
    ]);
    const { rows: history } = await pool.query('SELECT count(*)::int AS n FROM follow_history WHERE profile_key = $1', [
      'facts-1',
    ]);
    expect(history[0].n).toBe(4);
    const { rows: daily } = await pool.query(
      `SELECT sum(n)::int AS n FROM activity_daily WHERE profile_key = $1 AND type = 'purchase' AND target_id = 'p-1' AND day >= $2::date`,
      ['facts-1', iso(T0 - 7 * DAY_MS)],
    );
    expect(daily[0].n).toBe(3);
    const { rows: tags } = await pool.query(
      `SELECT sum(n)::int AS n FROM tag_activity_daily WHERE profile_key = $1 AND tag = 'category:dress'`,
      ['facts-1'],
    );
    expect(tags[0].n).toBe(10);
    expect(p.stage).toBe('loyal'); // 3 purchases in 90 days
    expect(p.value_tier).toBe('medium');
    expect(p.social_tier).toBe('potential');
  });

  it('counts an order once however many lines it has and whichever batches bring them (§4.2)', async () => {
    const u = { userId: 'order-1' };
    const line = (orderId: string | undefined, atMs: number, amount: number, product: string) =>
      event('purchase', u, atMs, {
        amount,
        currency: 'CNY',
        target: { type: 'product', id: product },
        ...(orderId !== undefined && { orderId }),
      });
    // three lines of one order, the third in a later batch; one purchase without an order
    await apply([line('o-1', T0 - 2 * DAY_MS, 700, 'p-1'), line('o-1', T0 - 2 * DAY_MS, 700, 'p-2')]);
    await apply([line('o-1', T0 - 2 * DAY_MS, 700, 'p-3'), line(undefined, T0 - 1 * DAY_MS, 10, 'p-4')]);
    let p = (await person('order-1'))!;
    expect(p.purchases).toBe(2);
    expect(p.monetary_total).toBe(2110); // money stays the sum of the lines
    expect(p.stage).toBe('new'); // two purchases, not four: not loyal
    expect(p.value_tier).toBe('high'); // by money (2110 ≥ 2000), not by count
    expect(await counts('order-1')).toMatchObject({ purchase: 4 }); // event counts stay per event

    // the same order id from another source is another order
    await apply([event('purchase', u, T0 - 1 * DAY_MS, { amount: 1, currency: 'CNY', orderId: 'o-1', source: 'app' })]);
    p = (await person('order-1'))!;
    expect(p.purchases).toBe(3);
    expect(p.stage).toBe('loyal');
  });

  it('dates an order at its first line: one that began more than 365 days ago counts in no window', async () => {
    const u = { userId: 'order-old' };
    const line = (atMs: number, product: string) =>
      event('purchase', u, atMs, {
        amount: 5,
        currency: 'CNY',
        orderId: 'o-old',
        target: { type: 'product', id: product },
      });
    await apply([line(T0 - 366 * DAY_MS, 'p-1'), line(T0 - 364 * DAY_MS, 'p-2'), event('click', u, T0)]);
    const p = (await person('order-old'))!;
    expect(p.purchases).toBe(1);
    expect(p.value_tier).toBe('low');
    expect(p.stage).toBe('active');
  });

  it('counts an order once when a merge brings lines of it from both profiles', async () => {
    const line = (who: { userId?: string; anonymousId?: string }, product: string) =>
      event('purchase', who, T0 - DAY_MS, {
        amount: 50,
        currency: 'CNY',
        orderId: 'o-shared',
        target: { type: 'product', id: product },
      });
    await apply([
      line({ anonymousId: 'order-anon' }, 'p-1'),
      line({ userId: 'order-u' }, 'p-2'),
      buy({ anonymousId: 'order-anon' }, T0 - DAY_MS, 5),
    ]);
    expect((await person('order-anon'))!.purchases).toBe(2);
    expect((await person('order-u'))!.purchases).toBe(1);
    await apply([identify('order-u', 'order-anon')]);
    const p = (await person('order-u'))!;
    expect(p.purchases).toBe(2);
    expect(p.monetary_total).toBe(105);
    expect(p.stage).toBe('new');
  });

  it('skips a redelivered chunk by its offsets and a retried event id by its dedupe record', async () => {
    const u = { userId: 'redeliver-1' };
    const first = [event('click', u, T0), event('click', u, T0)];
    const start = offsets.get(5) ?? 0;
    offsets.set(5, start + 2);
    const chunk = first.map((value, i) => ({ value, offset: String(start + i) }));
    const at = { groupId: 'g', topic: 't', partition: 5, lastOffset: String(start + 1) };
    expect((await store.apply(chunk, at, T0)).applied).toBe(2);
    expect(await store.apply(chunk, at, T0)).toMatchObject({ applied: 0, skipped: 2 });
    // the client retried the first event: new offset, same (source, eventId)
    await apply([first[0]!], T0, 5);
    expect(await counts('redeliver-1')).toEqual({ click: 2 });
    expect((await store.positions('g', 't', [5])).get(5)).toBe(String(start + 3));
  });

  it('applies the new events of a chunk that repeats an event or holds one already recorded, each once', async () => {
    const u = { userId: 'redeliver-2' };
    const known = event('click', u, T0);
    await apply([known], T0, 6);
    // A key twice in one chunk (new), beside a recorded one and a new one: the recorded key sends the
    // dedupe records down their second path, and only the two new events count.
    const repeated = event('like', u, T0);
    const result = await apply([repeated, known, repeated, event('share', u, T0)], T0, 6);
    expect(result).toMatchObject({ applied: 4, skipped: 0 });
    expect(await counts('redeliver-2')).toEqual({ click: 1, like: 1, share: 1 });
    // The same without a recorded key: the first path alone, the repeat still counted once.
    const again = event('comment', u, T0);
    await apply([again, again], T0, 6);
    expect(await counts('redeliver-2')).toEqual({ click: 1, like: 1, share: 1, comment: 1 });
  });

  it('moves stages and tiers across the 30/90/365-day thresholds with the sweep, reviewing only people due', async () => {
    // first let time run out for everyone the tests before created, so the counts below are ours
    await store.sweep(T0 + 2000 * DAY_MS, 1000);
    const u = { userId: 'sweep-1' };
    const quiet = { userId: 'sweep-quiet' };
    await apply([buy(u, T0), event('like', u, T0), event('click', quiet, T0 + 60 * DAY_MS)], T0);
    const at = async (ms: number) => {
      const r = await store.sweep(ms, 100);
      const p = (await person('sweep-1'))!;
      return { reviewed: r.reviewed, stage: p.stage, value: p.value_tier, social: p.social_tier };
    };
    expect((await person('sweep-1'))!.stage).toBe('new');
    expect(await at(T0 + 30 * DAY_MS)).toEqual({ reviewed: 0, stage: 'new', value: 'medium', social: 'potential' });
    expect(await at(T0 + 30 * DAY_MS + 1)).toEqual({
      reviewed: 1,
      stage: 'at_risk',
      value: 'medium',
      social: 'potential',
    });
    // the like exactly 90 days ago still counts
    expect(await at(T0 + 90 * DAY_MS)).toEqual({ reviewed: 0, stage: 'at_risk', value: 'medium', social: 'potential' });
    // sweep-quiet (last active day 60) is due at the same instant: at_risk
    expect(await at(T0 + 90 * DAY_MS + 1)).toEqual({
      reviewed: 2,
      stage: 'churned',
      value: 'medium',
      social: 'silent',
    });
    // only sweep-quiet (churned at day 150) is due by day 365
    expect(await at(T0 + 365 * DAY_MS)).toEqual({ reviewed: 1, stage: 'churned', value: 'medium', social: 'silent' });
    expect(await at(T0 + 365 * DAY_MS + 1)).toEqual({ reviewed: 1, stage: 'churned', value: 'low', social: 'silent' });
    expect((await person('sweep-1'))!.next_review_at).toBeNull();
    expect(await transitions('sweep-1')).toEqual(['->new:first_seen', 'new>at_risk:time', 'at_risk>churned:time']);
    expect(await transitions('sweep-quiet')).toEqual([
      '->potential:first_seen',
      'potential>at_risk:time',
      'at_risk>churned:time',
    ]);
    const { rows } = await pool.query(`SELECT payload FROM lifecycle_outbox WHERE profile_key = 'sweep-1' ORDER BY id`);
    for (const r of rows) expect(lifecycleMessageSchema.safeParse(r.payload).error).toBeUndefined();
    expect(rows.map((r) => r.payload)).toEqual([
      expect.objectContaining({
        v: 2,
        kind: 'stage',
        id: 'sweep-1',
        userId: 'sweep-1',
        anonymousIds: [],
        from: null,
        to: 'new',
        reason: 'first_seen',
        at: iso(T0),
      }),
      expect.objectContaining({ kind: 'value_tier', from: 'low', to: 'medium', reason: 'first_seen', at: iso(T0) }),
      expect.objectContaining({
        kind: 'social_tier',
        from: 'silent',
        to: 'potential',
        reason: 'first_seen',
        at: iso(T0),
      }),
      expect.objectContaining({
        kind: 'stage',
        from: 'new',
        to: 'at_risk',
        reason: 'time',
        at: iso(T0 + 30 * DAY_MS + 1),
      }),
      expect.objectContaining({
        kind: 'stage',
        from: 'at_risk',
        to: 'churned',
        reason: 'time',
        at: iso(T0 + 90 * DAY_MS + 1),
      }),
      expect.objectContaining({
        kind: 'social_tier',
        from: 'potential',
        to: 'silent',
        reason: 'time',
        at: iso(T0 + 90 * DAY_MS + 1),
      }),
      expect.objectContaining({
        kind: 'value_tier',
        from: 'medium',
        to: 'low',
        reason: 'time',
        at: iso(T0 + 365 * DAY_MS + 1),
      }),
    ]);
  });

  it('lets events move next_review_at only earlier (HOT updates); a review at the early instant stores the exact one and changes nothing', async () => {
    const u = { userId: 'early-1' };
    const review = async () => (await person('early-1'))!.next_review_at as Date;
    await apply([event('click', u, T0)], T0);
    expect(await review()).toEqual(new Date(T0 + 30 * DAY_MS + 1)); // at_risk after 30 idle days
    // active again ten days later: the exact instant moves to day 40, the stored one stays at day 30
    await apply([event('click', u, T0 + 10 * DAY_MS)], T0 + 10 * DAY_MS);
    expect(await review()).toEqual(new Date(T0 + 30 * DAY_MS + 1));
    await store.sweep(T0 + 30 * DAY_MS + 1, 1000);
    expect(await person('early-1')).toMatchObject({
      stage: 'potential',
      next_review_at: new Date(T0 + 40 * DAY_MS + 1),
    });
    await store.sweep(T0 + 40 * DAY_MS + 1, 1000);
    expect((await person('early-1'))!.stage).toBe('at_risk');
    expect(await transitions('early-1')).toEqual(['->potential:first_seen', 'potential>at_risk:time']);
  });

  it('names a return from churned a reactivation, and a late old event moves nothing back', async () => {
    const u = { userId: 'react-1' };
    await apply([event('click', u, T0 - 100 * DAY_MS)], T0);
    expect((await person('react-1'))!.stage).toBe('churned');
    await apply([event('click', u, T0 - 200 * DAY_MS)], T0); // late and older: still churned
    expect((await person('react-1'))!.stage).toBe('churned');
    await apply([event('click', u, T0 - 1 * DAY_MS)], T0);
    expect((await person('react-1'))!.stage).toBe('potential');
    expect(await transitions('react-1')).toEqual(['->churned:first_seen', 'churned>potential:reactivation']);
  });

  it('becomes loyal at the third purchase in 90 days and leaves it when one ages out', async () => {
    const u = { userId: 'loyal-1' };
    await apply([buy(u, T0 - 100 * DAY_MS), buy(u, T0 - 89 * DAY_MS), buy(u, T0 - 10 * DAY_MS)], T0);
    expect((await person('loyal-1'))!.stage).toBe('active');
    await apply([buy(u, T0)], T0);
    expect((await person('loyal-1'))!.stage).toBe('loyal');
    await store.sweep(T0 + 1 * DAY_MS + 1, 100); // the purchase of day -89 leaves the window
    expect((await person('loyal-1'))!.stage).toBe('active');
  });

  it('merges an anonymous profile into the user on identify, and later anonymous events land on the user', async () => {
    const anon = { anonymousId: 'dev-merge-1' };
    const user = { userId: 'merge-1' };
    await apply(
      [event('click', anon, T0 - 20 * DAY_MS), event('like', anon, T0 - 5 * DAY_MS), buy(anon, T0 - 5 * DAY_MS, 50)],
      T0,
      1,
    );
    await apply(
      [event('click', user, T0 - 2 * DAY_MS), identify('merge-1', 'dev-merge-1', { city: 'Hangzhou' })],
      T0,
      2,
    );
    await apply([event('click', anon, T0 - 1 * DAY_MS)], T0, 1);
    expect(await person('dev-merge-1')).toBeUndefined();
    const p = (await person('merge-1'))!;
    expect((p.first_seen_at as Date).getTime()).toBe(T0 - 20 * DAY_MS);
    expect((p.last_active_at as Date).getTime()).toBe(T0 - 1 * DAY_MS);
    expect(p.purchases).toBe(1);
    expect(p.monetary_total).toBe(50);
    expect(p.traits).toEqual({ city: 'Hangzhou' });
    expect(await counts('merge-1')).toEqual({ click: 3, like: 1, purchase: 1 });
    const { rows } = await pool.query(
      `SELECT id, profile_key FROM identities WHERE profile_key = 'merge-1' ORDER BY id`,
    );
    expect(rows.map((r) => r.id)).toEqual(['dev-merge-1', 'merge-1']);
  });

  it('says who changed: an anonymous profile by its anonymousId alone, a merged one by userId and its anonymousIds', async () => {
    await apply([event('click', { anonymousId: 'who-anon' }, T0 - DAY_MS)]);
    await apply([identify('who-u', 'who-anon'), buy({ userId: 'who-u' }, T0)]);
    const { rows } = await pool.query(
      `SELECT payload FROM lifecycle_outbox WHERE profile_key IN ('who-anon', 'who-u') AND payload->>'kind' = 'stage' ORDER BY id`,
    );
    expect(rows.map((r) => r.payload)).toEqual([
      {
        v: 2,
        kind: 'stage',
        id: 'who-anon',
        anonymousIds: ['who-anon'],
        from: null,
        to: 'potential',
        reason: 'first_seen',
        at: iso(T0),
        transitionId: expect.any(String),
      },
      {
        v: 2,
        kind: 'stage',
        id: 'who-u',
        userId: 'who-u',
        anonymousIds: ['who-anon'],
        from: 'potential',
        to: 'new',
        reason: 'event',
        at: iso(T0),
        transitionId: expect.any(String),
      },
    ]);
  });

  it('never merges on a placeholder id, and alias merges an older user id', async () => {
    await apply(
      [event('click', { anonymousId: 'anonymous' }, T0), identify('ph-1', 'anonymous'), identify('ph-2', 'null')],
      T0,
      3,
    );
    expect(await counts('anonymous')).toEqual({ click: 1 });
    await apply(
      [
        event('click', { userId: 'old-1' }, T0),
        event('click', { userId: 'new-1' }, T0),
        alias('new-1', 'old-1'),
        alias('new-1', '0'),
      ],
      T0,
      3,
    );
    expect(await counts('new-1')).toEqual({ click: 2 });
    expect(await person('old-1')).toBeUndefined();
  });

  it('keeps the first link of an id: a later alias of it to another user merges nothing', async () => {
    await apply(
      [event('click', { anonymousId: 'fl-a' }, T0), event('click', { userId: 'fl-u1' }, T0), identify('fl-u1', 'fl-a')],
      T0,
      3,
    );
    await apply([event('like', { userId: 'fl-u2' }, T0), alias('fl-u2', 'fl-a')], T0, 3);
    expect(await counts('fl-u1')).toEqual({ click: 2 });
    expect(await counts('fl-u2')).toEqual({ like: 1 });
  });

  it('counts nothing twice or never under concurrent anonymous batches and merges on other partitions', async () => {
    const rounds = 12;
    await Promise.all(
      Array.from({ length: rounds }, async (_, r) => {
        const anon = { anonymousId: `race-a-${r}` };
        // anonymous events on partition 10+r, the identify on 30+r, applied at the same time
        await Promise.all([
          apply([event('click', anon, T0), event('click', anon, T0)], T0, 10 + r).then(() =>
            apply([event('click', anon, T0)], T0, 10 + r),
          ),
          apply([event('click', { userId: `race-u-${r}` }, T0), identify(`race-u-${r}`, `race-a-${r}`)], T0, 30 + r),
        ]);
      }),
    );
    for (let r = 0; r < rounds; r++) {
      expect(await counts(`race-u-${r}`)).toEqual({ click: 4 });
      expect(await person(`race-a-${r}`)).toBeUndefined();
    }
  });

  it('makes an anonymous batch in flight and a merge of its id on another partition take turns', async () => {
    const anon = { anonymousId: 'inflight-a' };
    await apply([event('click', anon, T0)], T0, 60);
    // Hold the anonymous batch mid-transaction: another session has inserted one of its dedupe keys.
    const held = event('click', anon, T0) as { eventId: string; profileKey: string };
    const blocker = await pool.connect();
    await blocker.query('BEGIN');
    await blocker.query(`INSERT INTO applied_events VALUES ('test', $1, now())`, [dedupeId(held)]);
    const waiting = async () => {
      const { rows } = await box.pg.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`,
        [`test-store-${box.id}`],
      );
      return rows[0].n as number;
    };
    const anonBatch = apply([held as TopicMessage, event('click', anon, T0)], T0, 60);
    await waitFor('the anonymous batch to wait', async () => ((await waiting()) >= 1 ? true : undefined));
    let mergeDone = false;
    const merge = apply([identify('inflight-u', 'inflight-a')], T0, 61).then(() => (mergeDone = true));
    // The merge must wait for the anonymous batch (it needs the identity row that batch holds).
    await waitFor('the merge to wait or finish', async () => (mergeDone || (await waiting()) >= 2 ? true : undefined));
    await blocker.query('ROLLBACK');
    blocker.release();
    await Promise.all([anonBatch, merge]);
    expect(await counts('inflight-u')).toEqual({ click: 3 });
    expect(await person('inflight-a')).toBeUndefined();
  });

  it('applies several partitions in one transaction, storing each position, and skips each redelivered part alone', async () => {
    const anon = { anonymousId: 'parts-a' };
    const part = (partition: number, messages: TopicMessage[], from = offsets.get(partition) ?? 0) => {
      offsets.set(partition, Math.max(offsets.get(partition) ?? 0, from + messages.length));
      return {
        messages: messages.map((value, i) => ({ value, offset: String(from + i) })),
        at: { groupId: 'g', topic: 't', partition, lastOffset: String(from + messages.length - 1) },
      };
    };
    const first = [
      part(70, [event('click', anon, T0), event('click', anon, T0)]),
      part(71, [identify('parts-u', 'parts-a')]),
    ];
    expect(await store.applyParts(first, T0)).toMatchObject({ applied: 3, skipped: 0 });
    expect(await counts('parts-u')).toEqual({ click: 2 });
    expect(await person('parts-a')).toBeUndefined();
    // Partition 70 again (a redelivery) beside a new chunk of 72: only 72's message has an effect.
    const again = await store.applyParts([first[0]!, part(72, [event('click', { userId: 'parts-u' }, T0)])], T0);
    expect(again).toMatchObject({ applied: 1, skipped: 2 });
    expect(await counts('parts-u')).toEqual({ click: 3 });
    const positions = await store.positions('g', 't', [70, 71, 72]);
    expect(Object.fromEntries(positions)).toEqual({ 70: '2', 71: '1', 72: '1' });
    // Two parts of one partition in one call: the second starts where the first ends.
    const p73 = [event('click', { userId: 'parts-u' }, T0), event('click', { userId: 'parts-u' }, T0)];
    const result = await store.applyParts([part(73, p73.slice(0, 1), 0), part(73, p73, 0)], T0);
    expect(result).toMatchObject({ applied: 2, skipped: 1 });
    expect(await counts('parts-u')).toEqual({ click: 5 });
    expect((await store.positions('g', 't', [73])).get(73)).toBe('2');
  });

  it('records the ids of applied messages for the audience sweep in the same transaction, with touchAudiences', async () => {
    const touching = createSegmentStore({
      pool,
      rules: DEFAULT_RULES,
      convert: createConverter('CNY', new Map()),
      log: silentLog,
      touchAudiences: true,
    });
    const touched = async () =>
      (
        await pool.query<{ id: string }>("SELECT id FROM audience_touched WHERE id LIKE 'touch-%' ORDER BY id")
      ).rows.map((r) => r.id);
    const chunk = [event('click', { userId: 'touch-u', anonymousId: 'touch-a' }, T0)];
    await touching.apply(
      chunk.map((value) => ({ value, offset: '0' })),
      { groupId: 'g', topic: 't', partition: 80, lastOffset: '0' },
      T0,
    );
    expect(await touched()).toEqual(['touch-a', 'touch-u']);
    // Without the option (the store above), nothing is recorded.
    await apply([event('click', { userId: 'touch-v' }, T0)], T0, 81);
    expect(await touched()).toEqual(['touch-a', 'touch-u']);
  });

  // Last, after every merge above: event_counts and purchases have no foreign key to people
  // (migration 060), so the apply path and the merge keep the reference themselves.
  it('leaves no counts or purchases without their person after the chunks and merges above', async () => {
    const { rows } = await pool.query<{ t: string; n: number }>(
      `SELECT 'event_counts' AS t, count(*)::int AS n FROM event_counts c WHERE NOT EXISTS (SELECT 1 FROM people p WHERE p.profile_key = c.profile_key)
       UNION ALL SELECT 'purchases', count(*)::int FROM purchases x WHERE NOT EXISTS (SELECT 1 FROM people p WHERE p.profile_key = x.profile_key)`,
    );
    expect(rows).toEqual([
      { t: 'event_counts', n: 0 },
      { t: 'purchases', n: 0 },
    ]);
    const { rows: all } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM event_counts');
    expect(all[0]!.n).toBeGreaterThan(0);
  });
});
