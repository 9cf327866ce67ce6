import fc from 'fast-check';
import { nativeEventSchema } from '../../src/dialects/envelope';
import { fastNativeEvent } from '../../src/dialects/fast-native';

/**
 * The compiled check of the native envelope may only accept what zod accepts, and must then give
 * exactly zod's event (the same values, `target` and `context` in zod's key order, since they are
 * serialized as they are). Generated events mix valid and invalid values of every field.
 */
const pick = <T>(...xs: T[]) => fc.constantFrom(...xs);
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 2 });

const person = fc.oneof(
  pick<unknown>(null, '', 'u-1', 'anonymous', 'x'.repeat(128), 'x'.repeat(129), 7, {}),
  fc.string({ maxLength: 5 }),
);
const tag = fc.oneof(
  pick<unknown>(
    'category:dress',
    'brand:b1',
    'Bad:tag',
    'a:',
    'style:casual',
    'x:' + 'v'.repeat(64),
    'x:' + 'v'.repeat(65),
    'a:\u0007',
    3,
  ),
  fc.string({ maxLength: 6 }),
);
const target = fc.oneof(
  fc.record({
    type: pick<unknown>('product', 'shop', 'creator', 'content', 'nope', 1),
    id: pick<unknown>('p-1', '', 'y'.repeat(128), 'y'.repeat(129), 2),
  }),
  fc.record({ id: pick('p-1'), type: pick('product'), extra: pick(1) }),
  fc.record({ type: pick('product') }),
  pick<unknown>(null, 'p-1', []),
);
const geo = fc.oneof(
  fc.record(
    {
      country: maybe(pick<unknown>('CN', 'z'.repeat(64), 'z'.repeat(65), 1)),
      city: maybe(pick<unknown>('Hangzhou', null)),
      x: maybe(pick(1)),
    },
    { requiredKeys: [] },
  ),
  pick<unknown>(null, 'cn'),
);
const context = fc.oneof(
  fc.record(
    {
      zz: maybe(pick<unknown>(1, 'a')),
      channel: maybe(pick<unknown>('homepage', 'search', 'live', 'tv', null)),
      geo: maybe(geo),
      device: maybe(pick<unknown>({ os: 'ios', b: 1 }, null, [], 'x')),
    },
    { requiredKeys: [] },
  ),
  pick<unknown>(null, [], 'ctx'),
);
const event = fc.record(
  {
    eventId: maybe(pick<unknown>('e-1', 'bad id', '', 'a'.repeat(128), 'a'.repeat(129), 5)),
    type: pick<unknown>(
      'click',
      'dwell',
      'like',
      'follow',
      'purchase',
      'unfollow',
      'comment',
      'share',
      'favorite',
      'buy',
      1,
    ),
    userId: maybe(person),
    anonymousId: maybe(person),
    occurredAt: maybe(
      pick<unknown>(
        '2026-11-01T10:00:00Z',
        '2026-11-01T10:00:00.123+08:00',
        '2026-11-01',
        'yesterday',
        '2026-13-01T10:00:00Z',
        0,
      ),
    ),
    target,
    tags: maybe(fc.oneof(fc.array(tag, { maxLength: 34 }), pick<unknown>(null, 'a:b'))),
    dwellMs: maybe(pick<unknown>(0, 42_000, 86_400_000, 86_400_001, -1, 1.5, '5')),
    amount: maybe(pick<unknown>(0, 199, 1e12, 1e12 + 1, -1, '1')),
    currency: maybe(pick<unknown>('CNY', 'cny', 'EURO', 1)),
    quantity: maybe(pick<unknown>(1, 1_000_000, 1_000_001, 0, 2.5)),
    orderId: maybe(pick<unknown>('o-1', '', 'o'.repeat(129))),
    context: maybe(context),
    dwel_ms: maybe(pick(1)),
  },
  { requiredKeys: [] },
);

/**
 * Events in the plain shape clients send, valid unless their context is not: `event` alone makes a
 * valid one only every few thousand runs (0-5 in 20 000), too rare to compare the two often — and a
 * run with none failed the fast-path share below.
 */
const plain = fc.record(
  {
    eventId: maybe(pick('e-1', 'e-2')),
    type: pick('click', 'like', 'follow', 'share', 'favorite'),
    userId: pick('u-1', 'x'.repeat(128)),
    anonymousId: maybe(pick<unknown>('a-1', '', null)),
    occurredAt: maybe(pick('2026-11-01T10:00:00Z', '2026-11-01T10:00:00.123+08:00')),
    target: fc.record({ type: pick('product', 'shop', 'creator', 'content'), id: pick('p-1', 'y'.repeat(128)) }),
    tags: maybe(fc.array(pick('category:dress', 'brand:b1', 'style:casual'), { maxLength: 4 })),
    context: maybe(context),
  },
  { requiredKeys: ['type', 'userId', 'target'] },
);

describe('fastNativeEvent', () => {
  it('accepts only what nativeEventSchema accepts, and gives the same event', () => {
    let fast = 0;
    let valid = 0;
    fc.assert(
      fc.property(fc.oneof(event, plain), (input) => {
        // JSON in, as the route gets it (no undefined-valued keys).
        const body = JSON.parse(JSON.stringify(input)) as unknown;
        const zod = nativeEventSchema.safeParse(body);
        const got = fastNativeEvent(body);
        if (zod.success) valid += 1;
        if (got === undefined) return;
        fast += 1;
        expect(zod.success).toBe(true);
        expect(got).toEqual(zod.data);
        expect(JSON.stringify(got.target)).toBe(JSON.stringify(zod.data!.target));
        expect(JSON.stringify(got.context)).toBe(JSON.stringify(zod.data!.context));
      }),
      { numRuns: 20_000 },
    );
    // The fast path is taken for most valid events (else it saves nothing).
    expect(valid).toBeGreaterThan(1_000);
    expect(fast).toBeGreaterThan(valid * 0.5);
  });

  it('takes the plain events clients send', () => {
    const click = {
      type: 'click',
      userId: 'u-1',
      target: { type: 'product', id: 'p-1' },
      tags: ['category:dress'],
      context: { channel: 'homepage' },
    };
    const purchase = {
      type: 'purchase',
      anonymousId: 'a-1',
      userId: null,
      target: { type: 'product', id: 'p-1' },
      amount: 199,
      currency: 'CNY',
      quantity: 1,
      orderId: 'o-1',
      occurredAt: '2026-11-01T10:00:00+08:00',
    };
    for (const e of [click, purchase]) expect(fastNativeEvent(e)).toEqual(nativeEventSchema.parse(e));
  });
});
