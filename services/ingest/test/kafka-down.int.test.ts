import { createKafka } from '@pstream/platform';
import { readTopic, silentLog, throwawayBroker, waitFor } from '@pstream/testkit';
import { startIngest } from '@pstream/testkit/services';

/**
 * Really stops and restarts a throwaway broker (never the shared one) under a steady stream of
 * requests: while it is down every request gets a fast 503 with Retry-After and /readyz is 503;
 * when it is back the same ingest instance accepts again without help; and every event that got
 * a 202 is on the topic afterwards.
 */
describe('ingest while Kafka goes down and comes back', () => {
  jest.setTimeout(90_000);
  const topic = 'profile.events.v1';
  let broker: Awaited<ReturnType<typeof throwawayBroker>>;
  let ingest: Awaited<ReturnType<typeof startIngest>>;
  const outcomes: { eventId: string; status: number; ms: number; retryAfter?: string; code?: string }[] = [];
  let seq = 0;

  async function post(): Promise<number> {
    const eventId = `e-${seq++}`;
    const t0 = Date.now();
    const res = await ingest.app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { 'x-write-key': 'test-key' },
      payload: { eventId, type: 'click', userId: `u-${seq % 7}`, target: { type: 'product', id: 'p-1' } },
    });
    outcomes.push({
      eventId,
      status: res.statusCode,
      ms: Date.now() - t0,
      retryAfter: res.headers['retry-after'] as string | undefined,
      code: (res.json() as { error?: { code?: string } }).error?.code,
    });
    return res.statusCode;
  }
  const ready = async () => (await ingest.app.inject({ method: 'GET', url: '/readyz' })).statusCode;

  beforeAll(async () => {
    broker = await throwawayBroker();
    await broker.start();
    const admin = broker.kafka.admin();
    await admin.connect();
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 3 }] });
    await admin.disconnect();
    const kafka = createKafka({ brokers: [broker.brokers], clientId: 'ingest', log: silentLog });
    ingest = await startIngest(kafka, {
      EVENTS_TOPIC: topic,
      PRODUCE_TIMEOUT_MS: '1500',
      KAFKA_BREAKER_MS: '500',
      RATE_LIMIT_PER_SEC: '10000',
      RATE_LIMIT_BURST: '10000',
    });
  });

  afterAll(async () => {
    await ingest?.close();
    await broker?.remove();
  });

  it('answers 503 fast while the broker is down, recovers by itself, and never 202s an event Kafka lacks', async () => {
    for (let i = 0; i < 20; i++) expect(await post()).toBe(202);
    expect(await ready()).toBe(200);

    await broker.stop();
    const downFrom = outcomes.length;
    // Requests during the outage: the first may wait for the produce timeout, later ones meet the open breaker.
    await waitFor('a 503 from ingest', async () => ((await post()) === 503 ? true : undefined), 20_000, 0);
    for (let i = 0; i < 30; i++) expect(await post()).toBe(503);
    await waitFor('/readyz to turn 503', async () => ((await ready()) === 503 ? true : undefined), 10_000, 100);

    const down = outcomes.slice(downFrom).filter((o) => o.status === 503);
    expect(
      down.every((o) => o.retryAfter !== undefined && Number(o.retryAfter) >= 1 && o.code === 'ING_KAFKA_UNAVAILABLE'),
    ).toBe(true);
    // Never a hang: no request took much longer than the produce timeout.
    expect(Math.max(...down.map((o) => o.ms))).toBeLessThan(1500 + 1000);
    // Most of them were refused at once by the breaker.
    const fast = down.filter((o) => o.ms < 100).length;
    expect(fast).toBeGreaterThan(down.length / 2);

    await broker.start();
    const upFrom = outcomes.length;
    await waitFor(
      'a 202 after the broker is back',
      async () => ((await post()) === 202 ? true : undefined),
      45_000,
      100,
    );
    for (let i = 0; i < 20; i++) expect(await post()).toBe(202);
    await waitFor('/readyz to turn 200', async () => ((await ready()) === 200 ? true : undefined), 20_000, 200);
    expect(outcomes.slice(upFrom).some((o) => o.status === 202)).toBe(true);

    const acknowledged = outcomes.filter((o) => o.status === 202).map((o) => o.eventId);
    expect(outcomes.every((o) => o.status === 202 || o.status === 503)).toBe(true);
    const onTopic = await readTopic<{ eventId: string }>(broker.kafka, topic, (values) => {
      const ids = new Set(values.map((v) => v.eventId));
      return acknowledged.every((id) => ids.has(id));
    });
    const ids = new Set(onTopic.map((v) => v.eventId));
    expect(acknowledged.filter((id) => !ids.has(id))).toEqual([]);
  });
});
