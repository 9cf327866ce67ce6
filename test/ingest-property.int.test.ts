import type { Pool } from '@pstream/platform';
import { keys, memberDigest, readAppliedDigests } from '@pstream/interest-store';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import type { Redis } from '@pstream/platform';
import { createSandbox, type Sandbox, waitFor } from '@pstream/testkit';
import { type Platform, startPlatform } from '@pstream/testkit/services';

/** Strings as hostile as they come: any code point (lone surrogates and C0 controls included), or text. */
const text = (maxLength: number) =>
  fc.oneof(
    fc.string({ unit: 'binary', minLength: 1, maxLength }),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength }),
    fc.string({ minLength: 1, maxLength }),
    fc.constantFrom('probe\u0000nul', 'a\ud800', '\udfffz', 'tab\there', '连衣裙😀', 'x'.repeat(maxLength)),
  );
/** JSON nested up to 40 levels, with hostile keys and strings. */
const nested = fc.letrec((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    text(16),
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('node'), { maxLength: 3 }),
    fc.dictionary(text(8), tie('node'), { maxKeys: 3 }),
  ),
})).node;
const deep = fc.integer({ min: 1, max: 40 }).map((n) => {
  let v: unknown = 'leaf';
  for (let i = 0; i < n; i++) v = { d: v };
  return v;
});

/** Envelopes that are often valid and often not, in every field. */
const envelope = fc.record(
  {
    eventId: fc.oneof(fc.stringMatching(/^[A-Za-z0-9._:-]{1,20}$/), text(20)),
    type: fc.constantFrom('click', 'follow', 'unfollow', 'like', 'comment', 'share', 'favorite'),
    userId: text(130),
    anonymousId: text(130),
    target: fc.record({ type: fc.constantFrom('shop', 'product', 'creator', 'content'), id: text(130) }),
    tags: fc.array(
      fc.oneof(
        text(20).map((v) => `category:${v}`),
        fc.constantFrom('brand:acme', 'style:casual'),
      ),
      { maxLength: 4 },
    ),
    context: fc.record(
      {
        device: fc.oneof(
          fc.dictionary(text(8), nested, { maxKeys: 3 }),
          deep.map((d) => ({ d })),
        ),
      },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: ['type', 'target'] },
);
const identify = fc.record(
  {
    userId: text(130),
    anonymousId: text(130),
    traits: fc.dictionary(
      fc.oneof(text(10), fc.constantFrom('city', 'name', 'gender')),
      fc.oneof(text(40), fc.integer(), fc.boolean()),
    ),
  },
  { requiredKeys: ['userId'] },
);

/**
 * docs/operations.md §6 as a property: whatever ingest accepts, both consumers apply without an error — no
 * dead letter, and every accepted event carries its dedupe record in Redis and in Postgres.
 */
describe('everything ingest accepts is applied by both consumers (property, real servers)', () => {
  let box: Sandbox;
  let platform: Platform;
  let ingest: FastifyInstance;
  let pool: Pool;
  let redis: Redis;

  beforeAll(async () => {
    box = await createSandbox(3);
    platform = await startPlatform(box, { ...box.env, RATE_LIMIT_PER_SEC: '10000', RATE_LIMIT_BURST: '10000' });
    ({ ingest, pool, redis } = platform);
  }, 90_000);

  afterAll(async () => {
    await platform?.close();
    await box?.cleanup();
  }, 60_000);

  it('applies every accepted envelope in Redis and Postgres, and dead-letters none', async () => {
    const events = fc.sample(envelope, { numRuns: 400, seed: 8 });
    const identifies = fc.sample(identify, { numRuns: 100, seed: 88 });
    const accepted: { eventId: string; profileKey: string }[] = [];
    let refused = 0;
    const send = async (url: string, items: unknown[], wrap: (items: unknown[]) => unknown) => {
      const res = await ingest.inject({
        method: 'POST',
        url,
        headers: { 'x-write-key': 'dev-write-key', 'content-type': 'application/json' },
        payload: JSON.stringify(wrap(items)),
      });
      expect([202, 400]).toContain(res.statusCode);
      type Sorted = { accepted: number; rejected: { index: number }[] };
      // A 400 (nothing accepted) carries the same lists in the one error body's details.
      return res.statusCode === 400
        ? (res.json() as { error: { details: Sorted } }).error.details
        : (res.json() as Sorted);
    };
    for (let i = 0; i < events.length; i += 50) {
      const chunk = events.slice(i, i + 50).map((e, j) => ({ ...e, eventId: `p-${i + j}` }));
      const body = await send('/v1/events', chunk, (items) => ({ events: items }));
      const bad = new Set(body.rejected.map((r) => r.index));
      refused += bad.size;
      chunk.forEach((e, j) => {
        if (!bad.has(j)) accepted.push({ eventId: e.eventId, profileKey: '' });
      });
    }
    for (const item of identifies) {
      const body = await send('/v1/identify', [item], (items) => items[0]);
      if (body.accepted === 0) refused++;
    }
    // The sample exercises both sides of the rule.
    expect(accepted.length).toBeGreaterThan(50);
    expect(refused).toBeGreaterThan(50);

    // Every accepted event's dedupe record, in both stores.
    const ids = accepted.map((a) => a.eventId);
    await waitFor(
      'every accepted event applied by the segmenter',
      async () => {
        const { rows } = await pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM applied_events WHERE split_part(event_id, '@', 1) = ANY($1)`,
          [ids],
        );
        return rows[0]!.n === ids.length ? true : undefined;
      },
      60_000,
    );
    const { rows } = await pool.query<{ source: string; event_id: string }>(
      `SELECT source, event_id FROM applied_events WHERE split_part(event_id, '@', 1) = ANY($1)`,
      [ids],
    );
    await waitFor(
      'every accepted event applied by the scorer',
      async () => {
        for (const r of rows) {
          // The record sits with the person the event was applied to: its profile key, or where that was merged.
          let key = r.event_id.slice(r.event_id.indexOf('@') + 1);
          let found = false;
          for (let hop = 0; hop < 8 && !found; hop++) {
            found = (await readAppliedDigests(redis, keys(box.env.REDIS_PREFIX!), [key]))
              .get(key)!
              .has(memberDigest(`${r.source}|${r.event_id}`));
            const alias = found ? null : await redis.get(`${box.env.REDIS_PREFIX}:p:{${key}}:alias`);
            if (alias === null) break;
            key = alias;
          }
          if (!found) return undefined;
        }
        return true;
      },
      60_000,
    );

    // Both groups past the topic's end (identifies included), and no dead letters from either.
    const admin = box.kafka.admin();
    await admin.connect();
    try {
      const end = (await admin.fetchTopicOffsets(box.env.EVENTS_TOPIC!)).reduce((s, o) => s + Number(o.high), 0);
      for (const groupId of [box.env.SCORER_GROUP!, box.env.SEGMENTER_GROUP!]) {
        await waitFor(
          `group ${groupId} at the end`,
          async () => {
            const [topic] = await admin.fetchOffsets({ groupId, topics: [box.env.EVENTS_TOPIC!] });
            return topic!.partitions.reduce((s, p) => s + Math.max(0, Number(p.offset)), 0) === end ? true : undefined;
          },
          60_000,
        );
      }
      const offsets = await admin.fetchTopicOffsets(box.env.DLQ_TOPIC!);
      expect(offsets.reduce((s, o) => s + Number(o.high), 0)).toBe(0);
    } finally {
      await admin.disconnect();
    }
  }, 180_000);
});
