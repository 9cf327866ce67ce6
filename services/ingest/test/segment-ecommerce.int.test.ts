import { randomUUID } from 'node:crypto';
import { readTopic } from '@pstream/testkit';
import { useIngest } from '@pstream/testkit/services';
import { SEGMENT_IGNORED_EVENT_NAMES } from '../src/dialects';

const DAY = 86_400_000;
const basic = (k: string) => ({ authorization: `Basic ${Buffer.from(`${k}:`).toString('base64')}` });

/**
 * The common events of Segment's e-commerce spec, with the properties the spec lists for each,
 * written here from the spec. The five ingest ignores come first, then one it maps, so the mapped
 * one (same person, same partition) is read only after anything the others could have put there.
 */
function ecommerceCalls(
  who: { userId?: string; anonymousId?: string },
  ids: string[],
  timestamp: string,
): Record<string, unknown>[] {
  const product = {
    product_id: 'p-507',
    sku: 'G-32',
    category: 'Games',
    name: 'Monopoly: 3rd Edition',
    brand: 'Hasbro',
    variant: '200 pieces',
    price: 18.99,
    quantity: 1,
    coupon: 'MAYDEALS',
    position: 3,
    url: 'https://shop.example/product/p-507',
    image_url: 'https://shop.example/p-507.jpg',
  };
  const properties: Record<string, Record<string, unknown>> = {
    'Product Added': { cart_id: 'skdjsidjsdkdj29j', ...product },
    'Product Removed': { cart_id: 'ksjdj92dj29dk2k2', ...product },
    'Checkout Started': {
      order_id: '50314b8e9bcf000000000000',
      affiliation: 'Google Store',
      value: 30,
      revenue: 25,
      shipping: 3,
      tax: 2,
      discount: 2.5,
      coupon: 'hasbros',
      currency: 'USD',
      products: [
        { ...product },
        { product_id: 'p-508', sku: '46493-32', name: 'Uno Card Game', price: 3, quantity: 2, category: 'Games' },
      ],
    },
    'Product List Viewed': {
      list_id: 'hot_deals_1',
      category: 'Deals',
      products: [
        {
          product_id: 'p-507',
          sku: '45790-32',
          name: 'Monopoly: 3rd Edition',
          price: 19,
          position: 1,
          category: 'Games',
          url: 'https://shop.example/product/p-507',
          image_url: 'https://shop.example/p-507.jpg',
        },
      ],
    },
    'Products Searched': { query: 'blue roses' },
  };
  const calls = Object.entries(properties).map(([event, props], i) => ({
    type: 'track',
    event,
    properties: props,
    ...who,
    messageId: ids[i],
    timestamp,
  }));
  return [
    ...calls,
    { type: 'track', event: 'Product Viewed', properties: product, ...who, messageId: ids[5], timestamp },
  ];
}

/*
 * Product Added, Product Removed, Checkout Started, Product List Viewed and Products Searched, as
 * analytics.js (browser), @segment/analytics-node, Segment's mobile SDKs and RudderStack's Node SDK
 * send them — batch envelopes, context, integrations, odd messageIds, timestamps days old — are
 * accepted with 202, ignored each for its reason (docs/tracking.md), put on no topic, and counted
 * by name; the Product Viewed beside them is mapped. Bodies written from the SDKs' documented shapes.
 */
describe('Segment e-commerce common events as the SDKs send them', () => {
  jest.setTimeout(60_000);
  const state = useIngest();
  const now = Date.now();
  const old = new Date(now - 10 * DAY).toISOString();

  const sdks: {
    sdk: string;
    url: string;
    headers: Record<string, string>;
    body: (calls: Record<string, unknown>[]) => Record<string, unknown>;
    who: { userId?: string; anonymousId?: string };
    ids: string[];
  }[] = [
    {
      // analytics.js 2.0 (analytics-next) with batching: text/plain to the short path, the write key in the body.
      sdk: 'analytics.js',
      url: '/v1/b',
      headers: { 'content-type': 'text/plain' },
      who: { anonymousId: '6d3e1b0a-5a6c-4b8e-9f2d-1c0b7a9e8d11', userId: null as never },
      ids: Array.from(
        { length: 6 },
        (_, i) => `ajs-next-${(now + i).toString(16)}${'a1b2c3d4e5f60718293a4b5c6d7e8f90'.slice(i)}`,
      ),
      body: (calls) => ({
        batch: calls.map((c) => ({
          ...c,
          context: {
            page: {
              path: '/product/p-507',
              referrer: 'https://search.example/?q=monopoly',
              search: '?utm_source=news',
              title: 'Monopoly',
              url: 'https://shop.example/product/p-507?utm_source=news',
            },
            userAgent:
              'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36',
            userAgentData: { brands: [{ brand: 'Chromium', version: '131' }], mobile: false, platform: 'Linux' },
            locale: 'zh-CN',
            library: { name: 'analytics.js', version: 'npm:next-1.70.0' },
            campaign: { source: 'news', medium: 'email', name: 'may' },
          },
          integrations: {},
          sentAt: new Date(now).toISOString(),
          _metadata: { bundled: ['Segment.io'], unbundled: [], bundledIds: [] },
        })),
        writeKey: 'test-key',
        sentAt: new Date(now).toISOString(),
      }),
    },
    {
      // @segment/analytics-node: JSON to /v1/batch with the write key as Basic username.
      sdk: 'analytics-node',
      url: '/v1/batch',
      headers: { 'content-type': 'application/json', ...basic('test-key') },
      who: { userId: 'sdk-node-1' },
      // messageIds a custom integration sends: braces, spaces and slashes, unicode, 200 characters
      ids: [
        '{8F14E45F-CEA1-4B4E-9E2C-7A1D9B3C2E10}',
        'order 1001/remove',
        '结账-开始-1',
        'x'.repeat(200),
        'node-next-1733400000000-list',
        `node-next-${now}-${randomUUID()}`,
      ],
      body: (calls) => ({
        batch: calls.map((c) => ({
          ...c,
          context: { library: { name: '@segment/analytics-node', version: '2.2.0' } },
          integrations: {},
          _metadata: { nodeVersion: '20.19.0', jsRuntime: 'node' },
        })),
        sentAt: new Date(now).toISOString(),
      }),
    },
    {
      // Segment's mobile SDKs (analytics-swift / analytics-kotlin): a batch flushed from the device's
      // queue days later, uppercase UUID messageIds, the app and device in the batch's context.
      sdk: 'analytics-swift',
      url: '/v1/batch',
      headers: { 'content-type': 'application/json', ...basic('test-key') },
      who: { userId: 'sdk-ios-1', anonymousId: 'C3A1E0F2-7B9D-4E1A-8C2B-5D6F7A8B9C0D' },
      ids: Array.from({ length: 6 }, () => randomUUID().toUpperCase()),
      body: (calls) => ({
        batch: calls.map((c) => ({
          ...c,
          integrations: { 'Segment.io': true },
          context: { instanceId: randomUUID() },
        })),
        context: {
          app: { name: 'Shop', version: '4.2.0', build: '420', namespace: 'example.shop' },
          device: { manufacturer: 'Apple', model: 'iPhone15,2', type: 'ios', id: 'A1B2C3D4' },
          os: { name: 'iOS', version: '18.1' },
          library: { name: 'analytics-swift', version: '1.6.2' },
          network: { wifi: true, cellular: false },
          screen: { width: 393, height: 852 },
          timezone: 'Asia/Shanghai',
          locale: 'zh-Hans-CN',
        },
        sentAt: new Date(now).toISOString(),
      }),
    },
    {
      // RudderStack's Node SDK: originalTimestamp instead of timestamp, channel, integrations.All.
      sdk: 'rudder-sdk-node',
      url: '/v1/batch',
      headers: { 'content-type': 'application/json', ...basic('test-key') },
      who: { userId: 'sdk-rudder-1', anonymousId: randomUUID() },
      ids: Array.from({ length: 6 }, () => randomUUID()),
      body: (calls) => ({
        batch: calls.map(({ timestamp, ...c }) => ({
          ...c,
          originalTimestamp: timestamp,
          sentAt: new Date(now).toISOString(),
          channel: 'server',
          context: { library: { name: 'analytics-node', version: '3.0.13' } },
          integrations: { All: true },
          _metadata: { nodeVersion: '20.19.0' },
          rudderId: randomUUID(),
        })),
        sentAt: new Date(now).toISOString(),
      }),
    },
  ];

  const ignoredNames = Object.keys(SEGMENT_IGNORED_EVENT_NAMES);

  it.each(sdks.map((s) => [s.sdk, s] as const))(
    '%s: the five are accepted and ignored for their reasons, the view beside them is mapped',
    async (_sdk, s) => {
      const calls = ecommerceCalls(s.who, s.ids, old);
      const res = await state.app.inject({
        method: 'POST',
        url: s.url,
        headers: s.headers,
        payload: JSON.stringify(s.body(calls)),
      });
      expect([res.statusCode, res.json()]).toEqual([
        202,
        {
          accepted: 6,
          rejected: [],
          ignored: ignoredNames.map((name, index) => ({
            index,
            reason: `event "${name}" is ignored: ${SEGMENT_IGNORED_EVENT_NAMES[name]}`,
          })),
        },
      ]);
      const person = s.who.userId ?? s.who.anonymousId!;
      const mine = (v: Record<string, unknown>[]) => v.filter((m) => (m.userId ?? m.anonymousId) === person);
      const onTopic = mine(
        await readTopic<Record<string, unknown>>(
          state.box.kafka,
          state.box.env.EVENTS_TOPIC!,
          (v) => mine(v).length >= 1,
        ),
      );
      // Only the view: the calls before it on the person's partition put nothing there.
      expect(onTopic).toHaveLength(1);
      const view = onTopic[0]!;
      expect(view).toMatchObject({
        type: 'click',
        source: 'web',
        target: { type: 'product', id: 'p-507' },
        tags: expect.arrayContaining(['category:Games', 'brand:Hasbro']),
      });
      expect(view.eventId).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
      // Ten days old, sent now: it keeps its time (within the correction for our clock against sentAt).
      expect(Math.abs(Date.parse(view.occurredAt as string) - Date.parse(old))).toBeLessThan(60_000);
    },
  );

  it('counts each ignored event by name, once per call, across the SDKs', async () => {
    const metrics = (await state.app.inject({ method: 'GET', url: '/metrics' })).body;
    for (const name of ignoredNames) {
      expect(metrics).toContain(
        `ingest_events_ignored_total{source="web",type="track",name="${name}",service="ingest"} ${sdks.length}`,
      );
    }
  });

  it('a retried batch with odd messageIds maps them to the same event ids, so the consumers count it once', async () => {
    const s = sdks.find((x) => x.sdk === 'analytics-node')!;
    const who = { userId: 'sdk-node-retry' };
    const odd = ['{A}', 'b c', 'ç/d', 'y'.repeat(300), 'e', 'f f/'];
    for (let attempt = 0; attempt < 2; attempt++) {
      const res = await state.app.inject({
        method: 'POST',
        url: s.url,
        headers: s.headers,
        payload: JSON.stringify(s.body(ecommerceCalls(who, odd, old))),
      });
      expect(res.statusCode).toBe(202);
    }
    const copies = (
      await readTopic<Record<string, unknown>>(
        state.box.kafka,
        state.box.env.EVENTS_TOPIC!,
        (v) => v.filter((m) => m.userId === who.userId).length >= 2,
      )
    ).filter((m) => m.userId === who.userId);
    expect(copies).toHaveLength(2);
    expect(copies[0]!.eventId).toBe(copies[1]!.eventId);
    expect(copies[0]!.eventId).toMatch(/^m-[A-Za-z0-9_-]+$/);
  });
});
