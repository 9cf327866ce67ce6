import { normalizeEvent, normalizeIdentify } from '../../src/dialects';

const options = { source: 'web', now: Date.parse('2026-11-20T00:00:00Z') };
const click = { type: 'click', target: { type: 'product', id: 'p-1' } };

/** `null` and "" ids mean "absent" in the native API as in the Segment one (see segment.test.ts). */
describe('null and empty ids in the native envelope', () => {
  it.each([null, ''])('an event with userId %p beside a real anonymousId is keyed by the anonymousId', (userId) => {
    const r = normalizeEvent({ ...click, userId, anonymousId: 'a-1' }, options);
    expect(r.ok && r.value).toMatchObject({ profileKey: 'a-1', anonymousId: 'a-1' });
    expect(r.ok && 'userId' in r.value).toBe(false);
  });

  it('an event whose ids are all null or "" is refused for lacking one', () => {
    const r = normalizeEvent({ ...click, userId: null, anonymousId: '' }, options);
    expect(!r.ok && r.errors).toEqual([{ path: 'userId', message: 'userId or anonymousId is required' }]);
  });

  it('an identify with a null anonymousId keeps its traits and links nothing', () => {
    const r = normalizeIdentify({ userId: 'u-1', anonymousId: null, traits: { city: 'Hangzhou' } }, options);
    expect(r.ok && r.value).toMatchObject({ userId: 'u-1', traits: { city: 'Hangzhou' } });
    expect(r.ok && 'anonymousId' in r.value).toBe(false);
  });

  it('a userId of another type is still refused, naming it', () => {
    const r = normalizeEvent({ ...click, userId: 5 }, options);
    expect(!r.ok && r.errors.map((e) => e.path)).toEqual(['userId']);
  });
});
