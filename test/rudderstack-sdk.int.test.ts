import Analytics from '@rudderstack/rudder-sdk-node';
import { readTopic } from '@pstream/testkit';
import { usePipeline } from '@pstream/testkit/services';

/**
 * The official RudderStack Node SDK with its defaults — gzip on, so it posts gzipped JSON as
 * application/x-www-form-urlencoded, with `originalTimestamp` and `sentAt` — pointed at ingest by
 * its data plane URL only. Every call it makes is accepted and the profile shows the events.
 */
describe('the official @rudderstack/rudder-sdk-node client against ingest, with its defaults', () => {
  jest.setTimeout(90_000);
  const state = usePipeline();

  it('identifies, tracks, pages, screens and groups through the SDK, and the profile changes', async () => {
    const client = new Analytics('test-key', { dataPlaneUrl: state.pipeline.url, logLevel: 'error' });
    const outcomes: Promise<unknown>[] = [];
    // Each call's callback is told how its batch fared: an error for any non-2xx after the SDK's retries.
    const sent = () => {
      let done!: (err?: unknown) => void;
      outcomes.push(new Promise((resolve) => (done = resolve)));
      return (err?: unknown) => done(err ?? 'ok');
    };
    const before = Date.now();
    client.identify(
      { userId: 'rs-u1', anonymousId: 'rs-anon-1', traits: { email: 'r@example.org', address: { city: 'Shanghai' } } },
      sent(),
    );
    client.track(
      { userId: 'rs-u1', event: 'Product Viewed', properties: { product_id: 'p-1', category: 'shoes', brand: 'acme' } },
      sent(),
    );
    client.page({ userId: 'rs-u1', name: 'Product', properties: { product_id: 'p-2', tags: ['style:sport'] } }, sent());
    client.page({ userId: 'rs-u1', name: 'Home', properties: { path: '/' } }, sent());
    client.screen({ userId: 'rs-u1', name: 'Cart' }, sent());
    client.group({ userId: 'rs-u1', groupId: 'org-1', traits: { plan: 'pro' } }, sent());
    client.track({ userId: 'rs-u1', event: 'Cart Viewed', properties: { cart_id: 'c-1' } }, sent());
    await client.flush();
    expect(await Promise.all(outcomes)).toEqual(Array(7).fill('ok'));

    const onTopic = await readTopic<Record<string, unknown>>(
      state.box.kafka,
      state.box.env.EVENTS_TOPIC!,
      (v) => v.length >= 3,
    );
    expect(onTopic.map((m) => [m.kind, m.type ?? null, (m.target as { id: string } | undefined)?.id ?? null])).toEqual([
      ['identify', null, null],
      ['event', 'click', 'p-1'],
      ['event', 'click', 'p-2'],
    ]);
    // originalTimestamp, corrected by sentAt, is the event time: within the test's own span.
    for (const m of onTopic) expect(Date.parse(m.occurredAt as string)).toBeGreaterThanOrEqual(before - 1000);

    // Both stores, each on its own: the scorer's interests and the segmenter's traits and counts.
    const profile = await state.pipeline.profile(
      'rs-u1',
      (p) =>
        p.interests.some((i) => i.tag === 'product:p-2') &&
        p.traits.city === 'Shanghai' &&
        p.stats?.events?.click === 2,
    );
    expect(profile.anonymousIds).toContain('rs-anon-1');
    expect(profile.interests.map((i) => i.tag)).toEqual(
      expect.arrayContaining(['product:p-1', 'product:p-2', 'category:shoes', 'brand:acme', 'style:sport']),
    );
    expect(profile.stats?.events).toMatchObject({ click: 2 });

    const metrics = (await state.pipeline.ingest.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toContain('ingest_views_mapped_total{source="web",type="page",service="ingest"} 1');
    for (const [type, name] of [
      ['page', 'Home'],
      ['screen', 'Cart'],
      ['group', ''],
      ['track', 'Cart Viewed'],
    ]) {
      expect(metrics).toContain(
        `ingest_events_ignored_total{source="web",type="${type}",name="${name}",service="ingest"} 1`,
      );
    }
  });
});
