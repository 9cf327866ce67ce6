import fc from 'fast-check';
import { fastTopicMessage, topicMessageSchema } from '../src';

/**
 * The consumers' compiled check may only accept what `topicMessageSchema` accepts, and must then give
 * exactly zod's message: the same values, and the same key order everywhere (a consumer may store or
 * forward what it parsed). Generated messages of all three kinds mix valid and invalid values of
 * every field, unknown keys, control characters and lone surrogates.
 */
const pick = <T>(...xs: T[]) => fc.constantFrom(...xs);
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 2 });
/** Mostly a valid value, sometimes a wrong one: enough valid messages to compare their output too. */
const mostly = (good: fc.Arbitrary<unknown>, bad: fc.Arbitrary<unknown>) =>
  fc.oneof({ weight: 12, arbitrary: good }, { weight: 1, arbitrary: bad });

const id = mostly(
  fc.oneof(
    pick<unknown>('u-1', 'anonymous', 'x'.repeat(128), 'pair \ud83d\ude00'),
    fc.string({ minLength: 1, maxLength: 5 }),
  ),
  fc.oneof(pick<unknown>('', 'x'.repeat(129), null, 7, {}, 'a\u0000b', 'lone \ud800'), fc.string({ maxLength: 5 })),
);
const time = mostly(
  pick<unknown>('2026-11-01T10:00:00.000Z', '2026-11-01T10:00:00Z', '2024-02-29T23:59:59.123456Z'),
  pick<unknown>(
    '2026-11-01T10:00:00.123+08:00',
    '2025-02-29T10:00:00.000Z',
    '2026-11-01',
    '2026-13-01T10:00:00Z',
    'yesterday',
    0,
  ),
);
const tag = mostly(
  pick<unknown>('category:dress', 'brand:b1', 'x:' + 'v'.repeat(64), 'a:\u00e9'),
  fc.oneof(pick<unknown>('Bad:tag', 'a:', 'x:' + 'v'.repeat(65), 'a:\u0007', 3), fc.string({ maxLength: 6 })),
);
const target = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.record({ type: mostly(pick('product', 'shop', 'creator', 'content'), pick<unknown>('nope', 1)), id }),
  },
  fc.record({ id: pick('p-1'), type: pick('product'), extra: pick(1) }),
  fc.record({ id: pick('p-1'), type: pick('product') }),
  fc.record({ type: pick('product') }),
  pick<unknown>(null, 'p-1', []),
);
const loose = fc.dictionary(
  fc.oneof(pick('a', 'b', '__proto__', 'k\u0001', 'os'), fc.string({ maxLength: 3 })),
  fc.oneof(pick<unknown>(1, 'x', null, true, 'v\u001f', [1, [2]], { n: 'd\u007f' }), fc.string({ maxLength: 4 })),
  { maxKeys: 3 },
);
const geo = fc.oneof(
  fc.record(
    {
      zz: maybe(pick<unknown>(1, 'a')),
      country: maybe(pick<unknown>('CN', 'z'.repeat(64), 'z'.repeat(65), 1, 'C\u0000N')),
      city: maybe(pick<unknown>('Hangzhou', null)),
    },
    { requiredKeys: [] },
  ),
  pick<unknown>(null, 'cn'),
);
const context = fc.oneof(
  fc.record(
    {
      zz: maybe(pick<unknown>(1, 'a', 'b\u0002')),
      channel: maybe(pick<unknown>('homepage', 'search', 'live', 'tv', null)),
      geo: maybe(geo),
      device: maybe(fc.oneof(loose, pick<unknown>(null, [], 'x'))),
      __proto__: maybe(pick<unknown>({ a: 1 })),
    },
    { requiredKeys: [] },
  ),
  pick<unknown>(null, [], 'ctx'),
);
const traitValue = fc.oneof(
  pick<unknown>('gold', 'x'.repeat(256), 'x'.repeat(257), 3.5, true, null, [], { a: 1 }, 'bad\u0000'),
  fc.string({ maxLength: 4 }),
);
const traits = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.dictionary(fc.oneof(pick('tier', 'age', '__proto__', 'k\u0003')), traitValue, { maxKeys: 3 }),
  },
  pick<unknown>(null, [], 'gold'),
);
const message = fc.record(
  {
    v: mostly(pick(1), pick<unknown>(2, '1')),
    kind: mostly(pick('event', 'identify', 'alias'), pick<unknown>('track', 1)),
    eventId: mostly(pick('e-1', 'a'.repeat(128), 'x.y:z_-1'), pick<unknown>('bad id', '', 'a'.repeat(129), 5)),
    source: mostly(pick('web', 'é'), pick<unknown>('', 'w\u0000', 5)),
    type: mostly(
      pick('click', 'dwell', 'like', 'follow', 'purchase', 'unfollow', 'comment', 'share', 'favorite'),
      pick<unknown>('buy', 1),
    ),
    userId: maybe(id),
    anonymousId: maybe(id),
    previousId: maybe(id),
    profileKey: id,
    occurredAt: time,
    receivedAt: time,
    target,
    tags: mostly(fc.array(tag, { maxLength: 4 }), pick<unknown>(null, 'a:b')),
    dwellMs: maybe(pick<unknown>(0, 42_000, 2 ** 53, -1, 1.5, '5', -0)),
    amount: maybe(pick<unknown>(0, 199.5, 1e300, -1, '1')),
    currency: maybe(pick<unknown>('CNY', '', 1, 'C\u0007')),
    quantity: maybe(pick<unknown>(1, 1_000_001, 0, 2.5)),
    orderId: maybe(pick<unknown>('o-1', '', 'o'.repeat(129))),
    context: maybe(context),
    traits: maybe(traits),
    extra: maybe(pick<unknown>(1, 'x\u0000', { deep: 1 })),
  },
  {
    requiredKeys: [
      'v',
      'kind',
      'eventId',
      'source',
      'profileKey',
      'occurredAt',
      'receivedAt',
      'target',
      'tags',
      'type',
    ],
  },
);

describe('fastTopicMessage', () => {
  it('accepts only what topicMessageSchema accepts, and gives the same message in the same key order', () => {
    let fast = 0;
    let valid = 0;
    fc.assert(
      fc.property(message, (input) => {
        // JSON in, as a consumer gets it (no undefined-valued keys; `__proto__` an own key).
        const json = JSON.parse(JSON.stringify(input)) as unknown;
        const zod = topicMessageSchema.safeParse(json);
        const got = fastTopicMessage(json);
        if (zod.success) valid += 1;
        if (got === undefined) return;
        fast += 1;
        expect(zod.success).toBe(true);
        expect(got).toStrictEqual(zod.data);
        expect(JSON.stringify(got)).toBe(JSON.stringify(zod.data));
      }),
      { numRuns: 30_000 },
    );
    // The fast path is taken for most valid messages (else it saves nothing), and enough were valid.
    expect(valid).toBeGreaterThan(1000);
    expect(fast).toBeGreaterThan(valid * 0.9);
  });

  it('takes the messages ingest writes, of every kind', () => {
    const at = '2026-11-01T10:00:00.000Z';
    const common = { v: 1, eventId: 'e-1', source: 'web', profileKey: 'u-1', occurredAt: at, receivedAt: at };
    const messages = [
      {
        ...common,
        kind: 'event',
        type: 'purchase',
        userId: 'u-1',
        anonymousId: 'a-1',
        target: { id: 'p-1', type: 'product' },
        tags: ['category:dress'],
        amount: 199,
        currency: 'CNY',
        quantity: 1,
        orderId: 'o-1',
        context: { geo: { city: 'Hangzhou', x: 1 }, channel: 'homepage', device: { os: 'ios' } },
      },
      { ...common, kind: 'identify', userId: 'u-1', anonymousId: 'a-1', traits: { tier: 'gold', age: 30 } },
      { ...common, kind: 'alias', userId: 'u-1', previousId: 'a-1' },
    ];
    for (const m of messages) {
      const json = JSON.parse(JSON.stringify(m)) as unknown;
      expect(JSON.stringify(fastTopicMessage(json))).toBe(JSON.stringify(topicMessageSchema.parse(json)));
    }
  });

  it('leaves to zod what zod refuses, so the reason is zod’s', () => {
    const at = '2026-11-01T10:00:00.000Z';
    const bad = { v: 1, kind: 'alias', eventId: 'e-1', source: 'web', profileKey: 'u\u0000', occurredAt: at };
    expect(fastTopicMessage({ ...bad, receivedAt: at, userId: 'u', previousId: 'a' })).toBeUndefined();
    expect(fastTopicMessage({ ...bad, profileKey: 'u', receivedAt: at, userId: 'u' })).toBeUndefined();
  });
});
