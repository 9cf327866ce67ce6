import { usePipeline } from '@pstream/testkit/services';

const headers = { 'x-write-key': 'test-key', 'content-type': 'application/json' };
type Refused = {
  error: { code: string; details: { rejected: { index: number; errors: { path: string; message: string }[] }[] } };
};

/**
 * Ingest accepts only event times every store holds (docs/events.md §3.2: from 1970-01-01T00:00:00Z
 * to 24 h ahead), in every dialect; a time at the bound goes through both stores and the DLQ stays empty.
 */
describe('event times every store holds', () => {
  jest.setTimeout(90_000);
  const state = usePipeline();
  const post = (url: string, payload: unknown) =>
    state.pipeline.ingest.app.inject({ method: 'POST', url, headers, payload: JSON.stringify(payload) });
  const refusedAt = async (url: string, payload: unknown) => {
    const res = await post(url, payload);
    const body = res.json() as Refused;
    return {
      status: res.statusCode,
      code: body.error?.code,
      errors: body.error?.details?.rejected.flatMap((r) => r.errors),
    };
  };
  const click = { type: 'click', userId: 'u-time', target: { type: 'product', id: 'p-1' } };
  const track = {
    type: 'track',
    messageId: 'm-time',
    userId: 'u-time',
    event: 'Product Clicked',
    properties: { product_id: 'p-1' },
  };
  const early = {
    path: 'occurredAt',
    message: 'is before 1970-01-01T00:00:00.000Z, the earliest event time ingest accepts',
  };
  const earlySegment = { ...early, path: 'timestamp' };

  it('refuses year-0000 and pre-1970 times in the native dialect, naming occurredAt', async () => {
    for (const occurredAt of [
      '0000-06-01T00:00:00Z',
      '0000-01-01T00:00:00+01:00',
      '0001-01-01T00:00:00Z',
      '1969-12-31T23:59:59.999Z',
      '1970-01-01T00:30:00+01:00',
    ]) {
      expect({ occurredAt, ...(await refusedAt('/v1/events', { ...click, occurredAt })) }).toEqual({
        occurredAt,
        status: 400,
        code: 'ING_NOTHING_ACCEPTED',
        errors: [early],
      });
    }
    expect(
      await refusedAt('/v1/identify', { userId: 'u-time', traits: { city: 'x' }, occurredAt: '0000-06-01T00:00:00Z' }),
    ).toMatchObject({ status: 400, errors: [early] });
  });

  it('refuses them in the Segment dialect, naming timestamp, in track, identify, alias and batch', async () => {
    const at = '0000-06-01T00:00:00Z';
    expect(await refusedAt('/v1/track', { ...track, timestamp: at })).toMatchObject({
      status: 400,
      errors: [earlySegment],
    });
    expect(
      await refusedAt('/v1/identify', {
        type: 'identify',
        messageId: 'm-i',
        userId: 'u-time',
        traits: { city: 'x' },
        timestamp: '0000-01-01T00:00:00+01:00',
      }),
    ).toMatchObject({ status: 400, errors: [earlySegment] });
    expect(
      await refusedAt('/v1/alias', {
        type: 'alias',
        messageId: 'm-a',
        userId: 'u-time',
        previousId: 'a-time',
        timestamp: at,
      }),
    ).toMatchObject({ status: 400, errors: [earlySegment] });
    expect(await refusedAt('/v1/batch', { batch: [{ ...track, timestamp: at }] })).toMatchObject({
      status: 400,
      errors: [earlySegment],
    });
    // A device clock set to year 0000 with a true sentAt: the corrected time lands before 1970 too.
    expect(
      await refusedAt('/v1/track', { ...track, originalTimestamp: at, sentAt: '2026-06-01T00:00:00Z' }),
    ).toMatchObject({ status: 400 });
  });

  it('accepts the bound itself, and both stores apply it with nothing dead-lettered', async () => {
    const { pipeline, box } = state;
    expect(
      (
        await post('/v1/events', {
          ...click,
          eventId: 'at-bound',
          occurredAt: '1970-01-01T00:00:00Z',
          tags: ['category:old'],
        })
      ).statusCode,
    ).toBe(202);
    expect((await post('/v1/events', { ...click, eventId: 'recent', tags: ['category:new'] })).statusCode).toBe(202);
    // Both events on one partition, in order: once both stores show the later one, they have handled the first.
    const profile = await pipeline.profile(
      'u-time',
      (p) => p.stats?.events.click === 2 && p.interests.some((i) => i.tag === 'category:new'),
    );
    expect(profile.stats!.events.click).toBe(2);
    const admin = box.kafka.admin();
    await admin.connect();
    const dlq = await admin.fetchTopicOffsets(box.env.DLQ_TOPIC!);
    await admin.disconnect();
    expect(dlq.map((p) => Number(p.high))).toEqual(dlq.map(() => 0));
  });
});
