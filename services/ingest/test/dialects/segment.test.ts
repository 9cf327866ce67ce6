import fc from 'fast-check';
import { topicMessageSchema } from '@pstream/events';
import {
  eventIdFromMessageId,
  mapSegmentAlias,
  mapSegmentIdentify,
  mapSegmentItem,
  mapSegmentPage,
  mapSegmentTrack,
  SEGMENT_EVENT_NAMES,
  SEGMENT_IGNORED_EVENT_NAMES,
} from '../../src/dialects';

const options = { source: 'web', now: Date.parse('2026-11-20T00:00:00Z') };
const track = (
  event: string,
  properties: Record<string, unknown> = { product_id: 'p-1' },
  extra: Record<string, unknown> = {},
) => ({ type: 'track', event, userId: 'u-1', messageId: 'm-1', properties, ...extra });
const events = (input: unknown, context?: unknown) => {
  const r = mapSegmentTrack(input, options, context);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
};
const errorsOf = (input: unknown) => {
  const r = mapSegmentItem(input, options);
  return r.ok ? [] : r.errors;
};

describe('Segment track mapping', () => {
  it.each(Object.entries(SEGMENT_EVENT_NAMES).filter(([name]) => name !== 'Order Completed'))(
    'maps %s to %s',
    (name, type) => {
      expect(events(track(name))[0]).toMatchObject({ type, target: { type: 'product', id: 'p-1' } });
    },
  );

  it('accepts our own event names as they are', () => {
    expect(events(track('follow', { target: 'shop:s-9' }))[0]).toMatchObject({
      type: 'follow',
      target: { type: 'shop', id: 's-9' },
    });
    expect(events(track('dwell', { target: { type: 'content', id: 'v-1' }, dwellMs: 42_000 }))[0]).toMatchObject({
      type: 'dwell',
      dwellMs: 42_000,
    });
  });

  it('turns category and brand into tags and keeps properties.tags', () => {
    expect(
      events(track('Product Clicked', { product_id: 7, category: 'dress', brand: 'acme', tags: ['style:casual'] }))[0],
    ).toMatchObject({
      target: { type: 'product', id: '7' },
      tags: ['category:dress', 'brand:acme', 'style:casual'],
    });
  });

  it('keeps messageId as eventId and timestamp as occurredAt', () => {
    expect(
      events(track('Product Viewed', { product_id: 'p' }, { timestamp: '2026-11-19T08:00:00+08:00' }))[0],
    ).toMatchObject({ eventId: 'm-1', occurredAt: '2026-11-19T00:00:00.000Z' });
  });

  it('hashes a messageId outside our id syntax, the same way every time', () => {
    const id = eventIdFromMessageId('a message id with spaces')!;
    expect(id).toMatch(/^m-[A-Za-z0-9_-]{43}$/);
    expect(eventIdFromMessageId('a message id with spaces')).toBe(id);
    expect(eventIdFromMessageId('ok-id')).toBe('ok-id');
  });

  it('merges the batch context under the item’s own and keeps channel, device and location', () => {
    const [e] = events(
      track('Product Viewed', { product_id: 'p' }, { context: { device: { type: 'ios' }, campaign: { name: 'x' } } }),
      { location: { city: 'Hangzhou' }, device: { type: 'web' }, ip: '1.2.3.4' },
    );
    expect(e!.context).toEqual({ channel: 'campaign', device: { type: 'ios' }, geo: { city: 'Hangzhou' } });
  });

  it('makes one purchase per product of an Order Completed, worth price × quantity', () => {
    const list = events(
      track('Order Completed', {
        currency: 'CNY',
        revenue: 999,
        tags: ['season:autumn'],
        products: [
          { product_id: 'a', price: 10, quantity: 3, brand: 'acme' },
          { product_id: 'b', price: 5 },
        ],
      }),
    );
    expect(list.map((e) => [e.eventId, e.target.id, e.amount, e.quantity, e.tags])).toEqual([
      ['m-1:0', 'a', 30, 3, ['brand:acme', 'season:autumn']],
      ['m-1:1', 'b', 5, 1, ['season:autumn']],
    ]);
  });

  it('puts the order_id (or orderId) on every line item of the order', () => {
    const lines = events(
      track('Order Completed', {
        order_id: 'o-7',
        currency: 'CNY',
        products: [
          { product_id: 'a', price: 1 },
          { product_id: 'b', price: 2 },
          { product_id: 'c', price: 3 },
        ],
      }),
    );
    expect(lines.map((e) => [e.target.id, e.orderId])).toEqual([
      ['a', 'o-7'],
      ['b', 'o-7'],
      ['c', 'o-7'],
    ]);
    expect(
      events(track('Order Completed', { orderId: 12345, currency: 'CNY', revenue: 9, product_id: 'a' }))[0]!.orderId,
    ).toBe('12345');
  });

  it('names the order by the messageId when a multi-product call has no order_id', () => {
    const lines = events(
      track('Order Completed', {
        currency: 'CNY',
        products: [
          { product_id: 'a', price: 1 },
          { product_id: 'b', price: 2 },
        ],
      }),
    );
    expect(lines.map((e) => e.orderId)).toEqual(['msg:m-1', 'msg:m-1']);
    const noId = events({
      ...track('Order Completed', {
        currency: 'CNY',
        products: [
          { product_id: 'a', price: 1 },
          { product_id: 'b', price: 2 },
        ],
      }),
      messageId: undefined,
    });
    expect(noId[0]!.orderId).toMatch(/^msg:/);
    expect(noId[1]!.orderId).toBe(noId[0]!.orderId);
  });

  it('names properties.order_id when it is not a usable id', () => {
    expect(
      errorsOf(track('Order Completed', { order_id: { x: 1 }, currency: 'CNY', revenue: 5, product_id: 'a' })),
    ).toEqual([expect.objectContaining({ path: 'properties.order_id' })]);
  });

  it('shares the order amount by quantity when a product has no price', () => {
    const list = events(
      track('Order Completed', {
        currency: 'CNY',
        total: 90,
        products: [{ product_id: 'a', quantity: 2 }, { product_id: 'b' }],
      }),
    );
    expect(list.map((e) => e.amount)).toEqual([60, 30]);
  });

  it('makes one purchase for an order without products, on its product, target or affiliation', () => {
    expect(events(track('Order Completed', { currency: 'USD', revenue: 12.5, product_id: 'p-1' }))).toEqual([
      expect.objectContaining({
        type: 'purchase',
        amount: 12.5,
        currency: 'USD',
        target: { type: 'product', id: 'p-1' },
      }),
    ]);
    expect(events(track('Order Completed', { currency: 'USD', total: 20, affiliation: 'store-9' }))[0]).toMatchObject({
      amount: 20,
      target: { type: 'shop', id: 'store-9' },
    });
  });

  it.each([
    ['a missing target', track('Product Viewed', { name: 'x' }), 'properties.product_id'],
    ['a target of unknown type', track('follow', { target: 'page:x' }), 'properties.target.type'],
    [
      'a bad category tag',
      track('Product Viewed', { product_id: 'p', category: 'x'.repeat(65) }),
      'properties.category',
    ],
    ['a bad tag in properties.tags', track('Product Viewed', { product_id: 'p', tags: ['nope'] }), 'properties.tags.0'],
    [
      'an order without any amount',
      track('Order Completed', { currency: 'CNY', products: [{ product_id: 'a' }] }),
      'properties.revenue',
    ],
    ['an order without currency', track('Order Completed', { revenue: 5, product_id: 'a' }), 'properties.currency'],
    [
      'a product without id',
      track('Order Completed', { currency: 'CNY', products: [{ price: 5 }] }),
      'properties.products.0.product_id',
    ],
    [
      'a time more than 24 h ahead',
      track('Product Viewed', { product_id: 'p' }, { timestamp: '2026-11-22T00:00:00Z' }),
      'timestamp',
    ],
    ['a call of a type Segment does not have', { type: 'visit', userId: 'u-1' }, 'type'],
    [
      'a page naming a product without any real id',
      { type: 'page', userId: null, anonymousId: '', properties: { product_id: 'p' } },
      'userId',
    ],
    ['a dwell without dwellMs', track('dwell', { product_id: 'p' }), 'properties.dwellMs'],
  ])('refuses %s, naming the Segment field', (_name, input, path) => {
    expect(errorsOf(input).map((e) => e.path)).toContain(path);
  });

  it('accepts an event name it does not map, with no message and the reason naming every mapped name', () => {
    const r = mapSegmentItem(track('Signed Up'), options);
    expect(r).toEqual({ ok: true, value: [], ignored: expect.stringContaining('Product Added to Wishlist') });
    expect(r.ignored).toContain('"Signed Up"');
  });

  it.each(Object.entries(SEGMENT_IGNORED_EVENT_NAMES))(
    'accepts %s with no message, saying why it is ignored',
    (name, why) => {
      expect(
        mapSegmentItem(track(name, { cart_id: 'c-1', product_id: 'p-1', price: 10, quantity: 1 }), options),
      ).toEqual({ ok: true, value: [], ignored: `event "${name}" is ignored: ${why}` });
    },
  );

  it('names no event both mapped and ignored, and ignores none that mean a prototype key', () => {
    expect(Object.keys(SEGMENT_IGNORED_EVENT_NAMES).filter((name) => name in SEGMENT_EVENT_NAMES)).toEqual([]);
    expect(mapSegmentItem(track('toString'), options)).toMatchObject({
      ok: true,
      value: [],
      ignored: expect.stringContaining('is not one we map'),
    });
  });

  it('treats a null or "" userId beside a real anonymousId as absent', () => {
    for (const userId of [null, ''])
      expect(events(track('Product Viewed', { product_id: 'p' }, { userId, anonymousId: 'a-1' }))[0]).toMatchObject({
        profileKey: 'a-1',
        anonymousId: 'a-1',
      });
    expect(events(track('Product Viewed', { product_id: 'p' }, { anonymousId: null }))[0]).not.toHaveProperty(
      'anonymousId',
    );
  });

  it('reads content_id as a content target', () => {
    expect(events(track('like', { content_id: 'v-9' }))[0]).toMatchObject({
      type: 'like',
      target: { type: 'content', id: 'v-9' },
    });
  });

  it('never throws, and what it accepts is a valid topic message', () => {
    fc.assert(
      fc.property(
        fc.anything(),
        fc.constantFrom('track', 'identify', 'alias'),
        fc.constantFrom(...Object.keys(SEGMENT_EVENT_NAMES), 'click'),
        (properties, type, event) => {
          const r = mapSegmentItem(
            { type, event, userId: 'u', previousId: 'p', messageId: 'm', properties, traits: properties },
            options,
          );
          return r.ok ? r.value.every((m) => topicMessageSchema.safeParse(m).success) : r.errors.length > 0;
        },
      ),
    );
  });
});

describe('Segment identify mapping', () => {
  it('flattens address, derives birthYear from birthday and keeps the link', () => {
    const r = mapSegmentIdentify(
      {
        type: 'identify',
        userId: 'u-1',
        anonymousId: 'a-1',
        traits: { address: { city: 'Hangzhou', state: 'ZJ', country: 'CN' }, birthday: '1990-02-03', plan: 'gold' },
      },
      options,
    );
    expect(r.ok && r.value[0]).toMatchObject({
      kind: 'identify',
      userId: 'u-1',
      anonymousId: 'a-1',
      traits: { city: 'Hangzhou', region: 'ZJ', country: 'CN', birthYear: 1990, plan: 'gold' },
    });
  });
  it('accepts an identify without userId (or with a null one) and ignores it: traits are kept for known users only', () => {
    for (const userId of [undefined, null, '']) {
      const r = mapSegmentIdentify(
        { type: 'identify', userId, anonymousId: 'a-1', traits: { email: 'x@example.org' } },
        options,
      );
      expect(r).toEqual({ ok: true, value: [], ignored: expect.stringContaining('without userId') });
    }
  });
  it('drops a null or "" anonymousId beside a real userId', () => {
    const r = mapSegmentIdentify({ type: 'identify', userId: 'u-1', anonymousId: null, traits: {} }, options);
    expect(r.ok && r.value[0]).not.toHaveProperty('anonymousId');
  });
});

describe('Segment page, screen and group mapping', () => {
  const page = (properties: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    type: 'page',
    userId: 'u-1',
    messageId: 'pg-1',
    name: 'Home',
    properties,
    ...extra,
  });

  it('makes a page or screen that names a product, content or target a click on it, tagged from properties.tags only', () => {
    const r = mapSegmentItem(
      page({ product_id: 'p-7', category: 'Product', tags: ['style:casual'], url: 'https://shop.example/p/7' }),
      options,
    );
    expect(r).toEqual({
      ok: true,
      value: [
        expect.objectContaining({
          type: 'click',
          eventId: 'pg-1',
          target: { type: 'product', id: 'p-7' },
          tags: ['style:casual'],
        }),
      ],
    });
    const screen = mapSegmentItem({ ...page({ content_id: 'v-1' }), type: 'screen' }, options);
    expect(screen.ok && screen.value[0]).toMatchObject({ type: 'click', target: { type: 'content', id: 'v-1' } });
    const target = mapSegmentPage('page', page({ target: 'shop:s-1' }), options);
    expect(target.ok && target.value[0]).toMatchObject({ target: { type: 'shop', id: 's-1' } });
  });

  it('accepts a page naming nothing, a screen and a group with no message, saying why', () => {
    for (const input of [
      page({ path: '/', title: 'Home' }),
      { ...page({}), type: 'screen', properties: undefined },
      { type: 'group', userId: 'u-1', groupId: 'g-1', traits: { plan: 'pro' } },
    ]) {
      expect(mapSegmentItem(input, options)).toEqual({ ok: true, value: [], ignored: expect.any(String) });
    }
  });

  it('refuses a page whose target is malformed, naming the Segment field', () => {
    expect(errorsOf(page({ target: 'planet:x' })).map((e) => e.path)).toContain('properties.target.type');
  });

  it('refuses an alias whose previousId is null, as absent', () => {
    const r = mapSegmentAlias({ type: 'alias', userId: 'u-1', previousId: null }, options);
    expect(!r.ok && r.errors[0]!.path).toBe('previousId');
  });

  it('never throws, and what it accepts from any call type is a valid topic message', () => {
    fc.assert(
      fc.property(
        fc.anything(),
        fc.constantFrom('page', 'screen', 'group', 'identify'),
        fc.constantFrom(null, '', 'u-1', 7),
        (properties, type, userId) => {
          const r = mapSegmentItem(
            { type, userId, anonymousId: 'a-1', messageId: 'm', properties, traits: properties },
            options,
          );
          return r.ok ? r.value.every((m) => topicMessageSchema.safeParse(m).success) : r.errors.length > 0;
        },
      ),
    );
  });
});
