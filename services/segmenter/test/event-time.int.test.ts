import { DAY_MS } from '@pstream/lifecycle';
import { createPool, type Pool } from '@pstream/platform';
import { migrate } from '@pstream/profile-store';
import type { Producer } from 'kafkajs';
import { createSandbox, prng, type Sandbox, silentLog, waitFor } from '@pstream/testkit';
import { loadConfig } from '../src/config';
import { createSegmenter, type Segmenter } from '../src/processor';

const PEOPLE = 24;
const EVENTS = 30;

type Spec = {
  type: string;
  atMs: number;
  target: { type: string; id: string };
  tags: string[];
  extra: Record<string, unknown>;
};

/**
 * One person's events over the last 120 days, every one at a distinct instant: visits with social
 * interactions, purchases (some orders of several lines), and follows, unfollows and re-follows of
 * two shops — enough for stage, tiers, follows and the daily aggregates to depend on which events
 * are newest.
 */
function history(seed: number, nowMs: number): Spec[] {
  const rand = prng(seed);
  const out: Spec[] = [];
  const used = new Set<number>();
  const instant = () => {
    for (;;) {
      const at = nowMs - Math.floor(rand() * 120 * DAY_MS) - 60_000;
      if (!used.has(at)) {
        used.add(at);
        return at;
      }
    }
  };
  for (let n = 0; n < EVENTS; n++) {
    const r = rand();
    const product = { type: 'product', id: `p-${Math.floor(rand() * 4)}` };
    const tags = [`category:c${Math.floor(rand() * 3)}`];
    if (r < 0.35) out.push({ type: 'click', atMs: instant(), target: product, tags, extra: {} });
    else if (r < 0.55)
      out.push({
        type: ['like', 'comment', 'share', 'favorite'][Math.floor(rand() * 4)]!,
        atMs: instant(),
        target: product,
        tags,
        extra: {},
      });
    else if (r < 0.75) {
      const orderId = rand() < 0.5 ? `o-${seed}-${n}` : undefined;
      const at = instant();
      for (let line = 0; line < (orderId ? 2 : 1); line++) {
        out.push({
          type: 'purchase',
          atMs: line === 0 ? at : instant(),
          target: product,
          tags,
          extra: { amount: 50 + Math.floor(rand() * 900), currency: 'CNY', ...(orderId && { orderId }) },
        });
      }
    } else
      out.push({
        type: rand() < 0.6 ? 'follow' : 'unfollow',
        atMs: instant(),
        target: { type: 'shop', id: `s-${Math.floor(rand() * 2)}` },
        tags: [],
        extra: {},
      });
  }
  return out;
}

describe('facts and stages are a function of event time, whatever the arrival order (§4.1, §4.2, §4.3)', () => {
  let box: Sandbox;
  let pool: Pool;
  let segmenter: Segmenter;
  let producer: Producer;

  beforeAll(async () => {
    box = await createSandbox(3);
    const cfg = loadConfig(box.env);
    pool = createPool(cfg.DATABASE_URL, cfg.PG_SCHEMA, 'test-event-time', 4);
    await migrate(pool, cfg.PG_SCHEMA);
    producer = box.kafka.producer();
    await producer.connect();
    segmenter = createSegmenter(cfg, { kafka: box.kafka, pool, producer, log: silentLog });
    await segmenter.start();
  }, 60_000);

  afterAll(async () => {
    await segmenter?.stop();
    await producer?.disconnect();
    await pool?.end();
    await box?.cleanup();
  }, 60_000);

  it('gives twins the same facts, stage, tiers, follows and daily aggregates when one gets its events in time order and the other late and interleaved', async () => {
    const now = Date.now();
    const topic = box.env.EVENTS_TOPIC!;
    const message = (who: string, n: number, e: Spec) => {
      const at = new Date(e.atMs).toISOString();
      return {
        key: who,
        value: JSON.stringify({
          v: 1,
          kind: 'event',
          eventId: `${who}-${n}`,
          source: 'event-time',
          type: e.type,
          userId: who,
          profileKey: who,
          occurredAt: at,
          receivedAt: new Date(now).toISOString(),
          target: e.target,
          tags: e.tags,
          ...e.extra,
        }),
      };
    };
    type Message = { key: string; value: string };
    // Four sends each: the in-order people's events by quarters of their history, oldest first.
    const inOrder: Message[][] = [[], [], [], []];
    const shuffled: Message[][] = [[], [], [], []];
    const rand = prng(99);
    for (let i = 0; i < PEOPLE; i++) {
      const events = history(i + 1, now);
      const sorted = [...events].sort((a, b) => a.atMs - b.atMs);
      sorted.forEach((e, n) => inOrder[Math.floor((n * 4) / sorted.length)]!.push(message(`et-a-${i}`, n, e)));
      // The twin: the same events, newest first for half the people (everything arrives late),
      // randomly permuted for the others; spread over four sends that interleave the people, so
      // a person's events land in several chunks.
      const order = i % 2 === 0 ? [...sorted].reverse() : [...sorted].sort(() => rand() - 0.5);
      order.forEach((e) => shuffled[Math.floor(rand() * 4)]!.push(message(`et-b-${i}`, sorted.indexOf(e), e)));
    }
    // Each send applied before the next, so a person's events really arrive in separate chunks.
    let sent = 0;
    for (const batch of [...inOrder, ...shuffled]) {
      await producer.send({ topic, acks: -1, messages: batch });
      sent += batch.length;
      await waitFor(
        `${sent} events applied`,
        async () => {
          const { rows } = await pool.query<{ n: number }>('SELECT coalesce(sum(n), 0)::int AS n FROM event_counts');
          return rows[0]!.n === sent ? true : undefined;
        },
        60_000,
      );
    }

    // Each query's rows for the in-order people, and for their twins under the in-order keys.
    const twin = async (sql: string) => {
      const { rows } = await pool.query(sql);
      const of = (prefix: string) =>
        rows
          .filter((r: { k: string }) => r.k.startsWith(prefix))
          .map((r: { k: string }) => JSON.stringify({ ...r, k: r.k.replace(prefix, '') }))
          .sort();
      return { a: of('et-a-'), b: of('et-b-') };
    };
    const queries = [
      `SELECT profile_key AS k, first_seen_at, last_active_at, purchases, monetary_total::text, unconverted_purchases, first_purchase_at, last_purchase_at,
              recent_social, stage, value_tier, social_tier FROM people`,
      'SELECT profile_key AS k, type, n FROM event_counts',
      'SELECT profile_key AS k, target_type, target_id, following, since, changed_at FROM follows',
      'SELECT profile_key AS k, day, type, target_type, target_id, n FROM activity_daily',
      'SELECT profile_key AS k, day, type, tag, n FROM tag_activity_daily',
      'SELECT profile_key AS k, occurred_at, amount::text, order_id FROM purchases',
    ];
    for (const sql of queries) {
      const { a, b } = await twin(sql);
      expect(a.length).toBeGreaterThan(0);
      expect(b).toEqual(a);
    }
  }, 120_000);
});
