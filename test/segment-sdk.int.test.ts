import { Analytics } from '@segment/analytics-node';
import { readTopic } from '@pstream/testkit';
import { usePipeline } from '@pstream/testkit/services';

/**
 * The official Segment Node SDK, pointed at a listening ingest by changing only its host: its
 * calls arrive normalized on Kafka and change the person's profile (scorer, segmenter and query
 * API wired in-process, as test/pipeline.int.test.ts does).
 */
describe('the official @segment/analytics-node client against ingest', () => {
  jest.setTimeout(60_000);
  const state = usePipeline();

  it('tracks, identifies and aliases through the SDK, and the profile changes', async () => {
    const analytics = new Analytics({ writeKey: 'test-key', host: state.pipeline.url, flushAt: 10, maxRetries: 0 });
    const failures: unknown[] = [];
    analytics.on('error', (err) => failures.push(err));

    analytics.identify({
      userId: 'seg-u1',
      anonymousId: 'seg-anon-1',
      traits: { email: 'a@example.org', address: { city: 'Hangzhou', country: 'CN' }, birthday: '1991-05-04' },
    });
    analytics.track({
      userId: 'seg-u1',
      event: 'Product Viewed',
      properties: { product_id: 'p-42', category: 'dress', brand: 'acme' },
    });
    analytics.track({
      userId: 'seg-u1',
      event: 'Order Completed',
      properties: {
        order_id: 'o-1',
        currency: 'CNY',
        revenue: 330,
        products: [
          { product_id: 'p-42', price: 100, quantity: 2, category: 'dress' },
          { product_id: 'p-43', price: 100 },
          { product_id: 'p-44', price: 30 },
        ],
      },
    });
    analytics.alias({ userId: 'seg-u1', previousId: 'seg-anon-2' });
    // Routine calls we do not score: accepted (no SDK error, no retry) and put on no topic.
    analytics.page({ userId: 'seg-u1', name: 'Home', properties: { path: '/' } });
    analytics.screen({ userId: 'seg-u1', name: 'Settings' });
    analytics.group({ userId: 'seg-u1', groupId: 'org-1', traits: { plan: 'pro' } });
    analytics.track({ userId: 'seg-u1', event: 'Checkout Started', properties: { order_id: 'o-1' } });
    await analytics.closeAndFlush({ timeout: 20_000 });
    expect(failures).toEqual([]);

    const onTopic = await readTopic<Record<string, unknown>>(
      state.box.kafka,
      state.box.env.EVENTS_TOPIC!,
      (v) => v.length >= 6,
    );
    const byKind = (kind: string) => onTopic.filter((m) => m.kind === kind);
    expect(byKind('identify')).toEqual([
      expect.objectContaining({
        userId: 'seg-u1',
        anonymousId: 'seg-anon-1',
        source: 'web',
        traits: { city: 'Hangzhou', country: 'CN', birthYear: 1991, email: 'a@example.org' },
      }),
    ]);
    expect(byKind('alias')).toEqual([expect.objectContaining({ userId: 'seg-u1', previousId: 'seg-anon-2' })]);
    const events = byKind('event');
    expect(events.map((e) => [e.type, (e.target as { id: string }).id, e.amount ?? null])).toEqual([
      ['click', 'p-42', null],
      ['purchase', 'p-42', 200],
      ['purchase', 'p-43', 100],
      ['purchase', 'p-44', 30],
    ]);
    expect(events.slice(1).map((e) => e.orderId)).toEqual(['o-1', 'o-1', 'o-1']);
    expect(events[0]).toMatchObject({ tags: ['category:dress', 'brand:acme'] });
    // The SDK's messageId became the eventId, so an SDK retry is deduplicated downstream.
    const purchaseIds = events.slice(1).map((e) => e.eventId as string);
    expect(purchaseIds[0]!.replace(/:0$/, '')).toBe(purchaseIds[1]!.replace(/:1$/, ''));

    // One three-product order is one purchase (§4.2): the person is new, not loyal; money is the
    // lines' sum; each product still gets its own purchase weight (§4.1).
    const profile = await state.pipeline.profile(
      'seg-u1',
      (p) => p.interests.some((i) => i.tag === 'product:p-44') && p.stats?.events.purchase === 3,
    );
    expect(profile.stats).toMatchObject({ purchases: 1, monetary: { total: 330 } });
    expect(profile.lifecycle).toMatchObject({ stage: 'new' });
    expect(profile.tiers?.value).toBe('medium');
    expect(profile.interests.map((i) => i.tag)).toEqual(
      expect.arrayContaining(['product:p-42', 'product:p-43', 'product:p-44', 'category:dress', 'brand:acme']),
    );
    const score = (tag: string) => profile.interests.find((i) => i.tag === tag)!.score;
    expect(score('product:p-43')).toBeCloseTo(score('product:p-44'), 9);

    const metrics = (await state.pipeline.ingest.app.inject({ method: 'GET', url: '/metrics' })).body;
    for (const [type, name] of [
      ['page', 'Home'],
      ['screen', 'Settings'],
      ['group', ''],
      ['track', 'Checkout Started'],
    ]) {
      expect(metrics).toContain(
        `ingest_events_ignored_total{source="web",type="${type}",name="${name}",service="ingest"} 1`,
      );
    }
  });

  it('a write key reads nothing from the query API, as a bearer token or as Basic auth', async () => {
    for (const authorization of ['Bearer test-key', `Basic ${Buffer.from('test-key:').toString('base64')}`]) {
      const res = await state.pipeline.query.inject({
        method: 'GET',
        url: '/v1/profiles/seg-u1',
        headers: { authorization },
      });
      expect(res.statusCode).toBe(401);
    }
    const viaHeader = await state.pipeline.query.inject({
      method: 'GET',
      url: '/v1/profiles/seg-u1',
      headers: { 'x-write-key': 'test-key' },
    });
    expect(viaHeader.statusCode).toBe(401);
  });
});
