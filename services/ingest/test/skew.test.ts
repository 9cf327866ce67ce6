import { correctSkew } from '../src/skew';

const received = Date.parse('2026-11-20T12:00:00.000Z');
const value = (r: ReturnType<typeof correctSkew>) => (r.ok ? (r.value as Record<string, unknown>) : undefined);

describe('sentAt clock-skew correction', () => {
  it('moves timestamp by how far the device clock is off: receivedAt - (sentAt - timestamp)', () => {
    // The device clock runs an hour ahead; the event happened 5 s before the batch was sent.
    const r = correctSkew(
      { timestamp: '2026-11-20T12:59:55.000Z', sentAt: '2026-11-20T13:00:00.000Z', event: 'x' },
      undefined,
      received,
    );
    expect(value(r)).toEqual({ timestamp: '2026-11-20T11:59:55.000Z', sentAt: '2026-11-20T13:00:00.000Z', event: 'x' });
  });

  it('uses the batch sentAt when the call has none, and RudderStack’s originalTimestamp when there is no timestamp', () => {
    expect(
      value(correctSkew({ timestamp: '2026-11-20T07:59:00+08:00' }, '2026-11-20T00:00:00Z', received))!.timestamp,
    ).toBe('2026-11-20T11:59:00.000Z');
    expect(
      value(correctSkew({ originalTimestamp: '2026-11-20T00:00:00Z' }, '2026-11-20T00:01:00Z', received))!.timestamp,
    ).toBe('2026-11-20T11:59:00.000Z');
  });

  it('leaves the time as sent when there is no sentAt, and takes originalTimestamp as the timestamp', () => {
    const call = { timestamp: '2026-11-01T00:00:00Z' };
    expect(value(correctSkew(call, undefined, received))).toBe(call);
    expect(value(correctSkew({ originalTimestamp: '2026-11-01T00:00:00Z' }, undefined, received))!.timestamp).toBe(
      '2026-11-01T00:00:00Z',
    );
  });

  it('leaves a malformed timestamp for the mapping to refuse by name, and refuses a malformed sentAt', () => {
    expect(
      value(correctSkew({ timestamp: 'yesterday', sentAt: '2026-11-20T12:00:00Z' }, undefined, received))!.timestamp,
    ).toBe('yesterday');
    expect(correctSkew({ timestamp: '2026-11-20T12:00:00Z', sentAt: 'now' }, undefined, received)).toEqual({
      ok: false,
      errors: [{ path: 'sentAt', message: 'must be an ISO-8601 date-time with a time zone' }],
    });
  });

  it('passes anything that is not an object through untouched', () => {
    expect(correctSkew('x', '2026-11-20T12:00:00Z', received)).toEqual({ ok: true, value: 'x' });
  });
});
