import { createSandbox, readTopic, type Sandbox, testId } from '@pstream/testkit';
import { startIngest } from '@pstream/testkit/services';

const headers = { 'x-write-key': 'test-key', 'content-type': 'application/json' };
/** 32 tags of 64 characters: every line of an order carries them, so each line is about 2.3 KB on Kafka. */
const bigTags = Array.from({ length: 30 }, (_, i) => `t${i}:${'x'.repeat(60)}`);
const order = (messageId: string, products: number, userId = `buyer-${messageId}`) => ({
  type: 'track',
  messageId,
  userId,
  event: 'Order Completed',
  properties: {
    order_id: messageId,
    currency: 'CNY',
    tags: bigTags,
    products: Array.from({ length: products }, (_, j) => ({ product_id: `p-${j}`, price: 1 })),
  },
});
const click = (eventId: string) => ({
  eventId,
  type: 'click',
  userId: `innocent-${eventId}`,
  target: { type: 'product', id: 'p-1' },
});

/**
 * An order that fans out too far, or a request whose records are too large for the broker, fails
 * that request alone (docs/events.md §3.3, 413): never a 503, never the breaker, never the other
 * requests sharing its send.
 */
describe('oversized requests among innocent ones', () => {
  jest.setTimeout(90_000);
  let box: Sandbox;
  // The broker refuses record batches over 200 KB on this topic: a 100-product order of one
  // person (~230 KB, one partition) passes ingest's own limits and is refused by Kafka.
  const topic = `test.${testId()}.small-events`;
  let ingest: Awaited<ReturnType<typeof startIngest>>;
  const post = (url: string, payload: unknown) =>
    ingest.app.inject({ method: 'POST', url, headers, payload: JSON.stringify(payload) });

  beforeAll(async () => {
    box = await createSandbox(1);
    const admin = box.kafka.admin();
    await admin.connect();
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic, numPartitions: 3, configEntries: [{ name: 'max.message.bytes', value: String(200 * 1024) }] }],
    });
    await admin.disconnect();
    ingest = await startIngest(box.kafka, {
      ...box.env,
      EVENTS_TOPIC: topic,
      RATE_LIMIT_PER_SEC: '10000',
      RATE_LIMIT_BURST: '10000',
    });
  });
  afterAll(async () => {
    await ingest?.close();
    const admin = box.kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
    await box?.cleanup();
  });

  it('refuses an order of more than 100 products, naming properties.products, and keeps the rest of the batch', async () => {
    const res = await post('/v1/batch', {
      batch: [order('o-many', 101), { ...order('o-two', 2), userId: 'buyer-two' }],
    });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({
      accepted: 1,
      rejected: [
        { index: 0, errors: [{ path: 'properties.products', message: 'at most 100 products per order, got 101' }] },
      ],
    });
    expect((await post('/v1/track', order('o-alone', 3000))).statusCode).toBe(400);
  });

  it('answers 413 for a request whose records pass 768 KB, before any send', async () => {
    // Four 100-line orders of one person: ~920 KB of records from a body of ~40 KB.
    const res = await post('/v1/batch', {
      batch: ['a', 'b', 'c', 'd'].map((m) => order(`o-big-${m}`, 100, 'buyer-big')),
    });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toMatchObject({
      error: { code: 'ING_TOO_LARGE', message: expect.stringMatching(/over the 768 KB one request may produce/) },
    });
  });

  it('gives the orders Kafka refuses as too large a 413 each, and every concurrent innocent request its 202', async () => {
    const innocent = Array.from({ length: 60 }, (_, i) => `ok-${i}`);
    const oversized = ['x1', 'x2', 'x3'];
    // Interleaved and all at once, so the oversized orders share sends with innocent requests.
    const requests = innocent.flatMap((id, i) => [
      post('/v1/events', click(id)).then((res) => ({ id, status: res.statusCode })),
      ...(i % 20 === 5
        ? [
            post('/v1/track', order(oversized[(i - 5) / 20]!, 100)).then((res) => ({
              id: oversized[(i - 5) / 20]!,
              status: res.statusCode,
              body: res.json() as unknown,
            })),
          ]
        : []),
    ]);
    const answers = await Promise.all(requests);
    expect(answers.filter((a) => innocent.includes(a.id)).map((a) => a.status)).toEqual(
      Array(innocent.length).fill(202),
    );
    expect(answers.filter((a) => oversized.includes(a.id))).toEqual(
      oversized.map((id) => ({
        id,
        status: 413,
        body: { error: { code: 'ING_TOO_LARGE', message: expect.stringContaining('Kafka refused this request') } },
      })),
    );
    // Kafka is fine: the breaker stayed closed and the next request is accepted at once.
    expect((await ingest.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    expect((await post('/v1/events', click('after'))).statusCode).toBe(202);
    const metrics = (await ingest.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/^ingest_kafka_breaker_open\{[^}]*\} 0$/m);
    expect(metrics).toMatch(/^ingest_events_rejected_total\{source="web",reason="too_large"[^}]*\} [1-9]\d*$/m);
    expect(metrics).not.toMatch(/reason="unavailable"/);
    // Every innocent event is on the topic; no line of a refused order is.
    const want = [...innocent, 'after'];
    const onTopic = await readTopic<{ eventId: string; userId?: string }>(box.kafka, topic, (v) =>
      want.every((id) => v.some((m) => m.eventId === id)),
    );
    expect(onTopic.filter((m) => m.userId !== undefined && oversized.some((x) => m.userId === `buyer-${x}`))).toEqual(
      [],
    );
  });
});
