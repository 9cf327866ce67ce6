import { gzipSync } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { createSandbox, readTopic, type Sandbox } from '@pstream/testkit';
import { startIngest } from '@pstream/testkit/services';

const key = { 'x-write-key': 'test-key' };
const basic = (k: string) => ({ authorization: `Basic ${Buffer.from(`${k}:`).toString('base64')}` });

/**
 * What Segment's and RudderStack's SDKs send routinely, as plain HTTP on real Kafka: each call's status, body and
 * messages.
 */
describe('ingest accepts what Segment accepts', () => {
  jest.setTimeout(60_000);
  let box: Sandbox;
  let ingest: Awaited<ReturnType<typeof startIngest>>;
  let app: FastifyInstance;
  const post = (url: string, payload: unknown, headers: Record<string, string> = key) =>
    app.inject({
      method: 'POST',
      url,
      headers: { 'content-type': 'application/json', ...headers },
      payload: Buffer.isBuffer(payload) ? payload : JSON.stringify(payload),
    });

  beforeAll(async () => {
    box = await createSandbox();
    ingest = await startIngest(box.kafka, box.env);
    app = ingest.app;
  });
  afterAll(async () => {
    await ingest?.close();
    await box?.cleanup();
  });

  it('accepts page, screen, group and unmapped track calls alone with 202, saying which were ignored and why', async () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['/v1/page', { userId: 'h-1', name: 'Home', properties: { path: '/' } }, 'names nothing to score'],
      ['/v1/screen', { userId: 'h-1', name: 'Settings' }, 'names nothing to score'],
      ['/v1/group', { userId: 'h-1', groupId: 'g-1', traits: { plan: 'pro' } }, 'not used'],
      [
        '/v1/track',
        { userId: 'h-1', event: 'Checkout Started', properties: {} },
        '"Checkout Started" is ignored: an intent to buy',
      ],
      [
        '/v1/identify',
        { type: 'identify', userId: null, anonymousId: 'h-anon', traits: { email: 'x@example.org' } },
        'without userId',
      ],
    ];
    for (const [url, payload, why] of cases) {
      const res = await post(url, payload);
      expect([url, res.statusCode, res.json()]).toEqual([
        url,
        202,
        { accepted: 1, rejected: [], ignored: [{ index: 0, reason: expect.stringContaining(why) }] },
      ]);
    }
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toContain(
      'ingest_events_ignored_total{source="web",type="track",name="Checkout Started",service="ingest"} 1',
    );
  });

  it('reads analytics.js short paths with the write key in the body, and takes the key out of the body', async () => {
    const res = await post(
      '/v1/p',
      { writeKey: 'other-key', type: 'page', userId: 'h-2', messageId: 'h2-page', properties: { product_id: 'p-1' } },
      { 'content-type': 'text/plain' },
    );
    expect([res.statusCode, res.json()]).toEqual([202, { accepted: 1, rejected: [] }]);
    const batch = await post(
      '/v1/b',
      {
        writeKey: 'test-key',
        batch: [
          {
            type: 'track',
            event: 'Product Clicked',
            userId: 'h-2',
            messageId: 'h2-b',
            properties: { product_id: 'p-2' },
          },
          { type: 'group', userId: 'h-2', groupId: 'g' },
        ],
      },
      { 'content-type': 'text/plain' },
    );
    expect([batch.statusCode, batch.json()]).toEqual([
      202,
      { accepted: 2, rejected: [], ignored: [{ index: 1, reason: expect.any(String) }] },
    ]);
    const onTopic = await readTopic<Record<string, unknown>>(box.kafka, box.env.EVENTS_TOPIC!, (v) =>
      ['h2-page', 'h2-b'].every((id) => v.some((m) => m.eventId === id)),
    );
    // The body's key chose the source; it is not on the message.
    expect(onTopic.find((m) => m.eventId === 'h2-page')).toMatchObject({
      source: 'app',
      type: 'click',
      target: { type: 'product', id: 'p-1' },
    });
    expect(JSON.stringify(onTopic)).not.toContain('writeKey');
  });

  it.each([
    ['an unknown key in the body', { writeKey: 'nope' }, {}],
    ['no key anywhere', {}, {}],
    ['a body key other than the header’s', { writeKey: 'other-key' }, basic('test-key')],
  ])('refuses %s with 401', async (_name, extra, headers) => {
    const res = await post(
      '/v1/t',
      { event: 'Product Clicked', userId: 'h-3', properties: { product_id: 'p' }, ...extra },
      { 'content-type': 'text/plain', ...headers },
    );
    expect([res.statusCode, res.json().error.code]).toEqual([401, 'ING_UNAUTHORIZED']);
  });

  it('reads RudderStack’s gzipped form-urlencoded batch and corrects its device clock by sentAt', async () => {
    const now = Date.now();
    // The device clock runs two hours ahead; the event happened a minute before the batch was sent.
    const ahead = (ms: number) => new Date(now + 2 * 3600_000 - ms).toISOString();
    const body = gzipSync(
      JSON.stringify({
        batch: [
          {
            type: 'track',
            event: 'Product Viewed',
            userId: 'h-4',
            messageId: 'h4-rs',
            originalTimestamp: ahead(60_000),
            sentAt: ahead(0),
            properties: { product_id: 'p-4' },
          },
        ],
        sentAt: ahead(0),
      }),
    );
    const res = await post('/v1/batch', body, {
      ...basic('test-key'),
      'content-type': 'application/x-www-form-urlencoded',
      'content-encoding': 'gzip',
    });
    expect(res.statusCode).toBe(202);
    const [message] = (
      await readTopic<Record<string, unknown>>(box.kafka, box.env.EVENTS_TOPIC!, (v) =>
        v.some((m) => m.eventId === 'h4-rs'),
      )
    ).filter((m) => m.eventId === 'h4-rs');
    const occurred = Date.parse(message!.occurredAt as string);
    expect(occurred).toBeGreaterThan(now - 60_000 - 5_000);
    expect(occurred).toBeLessThan(Date.now() - 60_000 + 5_000);
  });

  it('treats null and "" ids beside a real one as absent in the native endpoints too', async () => {
    const res = await post('/v1/events', {
      type: 'click',
      userId: null,
      anonymousId: 'h-anon-5',
      eventId: 'h5-native',
      target: { type: 'product', id: 'p-5' },
    });
    expect(res.statusCode).toBe(202);
    const identify = await post('/v1/identify', { userId: 'h-5', anonymousId: '', traits: { city: 'Hangzhou' } });
    expect(identify.statusCode).toBe(202);
    const onTopic = await readTopic<Record<string, unknown>>(
      box.kafka,
      box.env.EVENTS_TOPIC!,
      (v) => v.some((m) => m.eventId === 'h5-native') && v.some((m) => m.userId === 'h-5'),
    );
    expect(onTopic.find((m) => m.eventId === 'h5-native')).toMatchObject({ profileKey: 'h-anon-5' });
    expect(onTopic.find((m) => m.userId === 'h-5')).not.toHaveProperty('anonymousId');
  });
});
