import fc from 'fast-check';
import { topicMessageSchema } from '@pstream/events';
import { MAX_OTHER_TRAITS, normalizeAlias, normalizeEvent, normalizeIdentify, traitsSchema } from '../../src/dialects';

const options = { source: 'web', now: Date.parse('2026-11-20T00:00:00Z') };
const pathsOf = (r: { ok: boolean; errors?: { path: string }[] }) => (r.ok ? [] : r.errors!.map((e) => e.path));

describe('normalizeIdentify', () => {
  it('keys traits by userId and keeps a real anonymousId as the merge link', () => {
    const r = normalizeIdentify(
      { userId: 'u-1', anonymousId: 'dev-1', traits: { gender: 'female', birthYear: 1990 } },
      options,
    );
    expect(r.ok && r.value).toMatchObject({
      kind: 'identify',
      profileKey: 'u-1',
      anonymousId: 'dev-1',
      traits: { gender: 'female', birthYear: 1990 },
    });
  });
  it.each(['anonymous', '0', 'null', ''])(
    'drops the placeholder anonymousId %p: traits apply, nothing merges',
    (anonymousId) => {
      const r = normalizeIdentify(
        { userId: 'u-1', anonymousId: anonymousId || ' ', traits: { city: 'Hangzhou' } },
        options,
      );
      expect(r.ok).toBe(true);
      expect(r.ok && 'anonymousId' in r.value).toBe(false);
    },
  );
  it('drops an anonymousId equal to the userId', () => {
    const r = normalizeIdentify({ userId: 'u-1', anonymousId: 'u-1' }, options);
    expect(r.ok && 'anonymousId' in r.value).toBe(false);
  });
  it('refuses a placeholder userId', () => {
    expect(pathsOf(normalizeIdentify({ userId: 'undefined', traits: {} }, options))).toEqual(['userId']);
  });
  it.each([
    ['a string birth year', { birthYear: '1990' }, 'traits.birthYear'],
    ['a bad e-mail', { email: 'nope' }, 'traits.email'],
    ['a bad phone', { phone: 'call me' }, 'traits.phone'],
    ['an age of 200', { age: 200 }, 'traits.age'],
    ['a nested object', { company: { name: 'x' } }, 'traits.company'],
    ['an array', { pets: ['cat'] }, 'traits.pets'],
    ['a 257-character custom trait', { note: 'x'.repeat(257) }, 'traits.note'],
    ['a trait name with a space', { 'my trait': 1 }, 'traits.my trait'],
    [
      'too many custom traits',
      Object.fromEntries(Array.from({ length: MAX_OTHER_TRAITS + 1 }, (_, i) => [`t${i}`, i])),
      'traits',
    ],
  ])('refuses %s', (_name, traits, path) => {
    expect(pathsOf(normalizeIdentify({ userId: 'u-1', traits }, options))).toContain(path);
  });
  it('lets null clear a well-known trait', () => {
    expect(traitsSchema.safeParse({ city: null, gender: null }).success).toBe(true);
  });
});

describe('normalizeAlias', () => {
  it('links previousId to userId, keyed by userId', () => {
    const r = normalizeAlias({ userId: 'u-1', previousId: 'dev-1' }, options);
    expect(r.ok && r.value).toMatchObject({ kind: 'alias', profileKey: 'u-1', previousId: 'dev-1' });
  });
  it.each([
    ['a placeholder previousId', { userId: 'u-1', previousId: 'anonymous' }, 'previousId'],
    ['a placeholder userId', { userId: '0', previousId: 'dev-1' }, 'userId'],
    ['the same id twice', { userId: 'u-1', previousId: 'u-1' }, 'previousId'],
  ])('refuses %s', (_name, input, path) => {
    expect(pathsOf(normalizeAlias(input, options))).toEqual([path]);
  });
});

describe('native envelopes', () => {
  const arbEvent = fc.record(
    {
      eventId: fc.stringMatching(/^[A-Za-z0-9._:-]{1,128}$/),
      type: fc.constantFrom('follow', 'unfollow', 'click', 'like', 'comment', 'share', 'favorite'),
      userId: fc.string({ minLength: 1, maxLength: 128 }),
      anonymousId: fc.string({ minLength: 1, maxLength: 128 }),
      occurredAt: fc
        .date({ min: new Date('2020-01-01T00:00:00Z'), max: new Date('2026-11-20T23:00:00Z'), noInvalidDate: true })
        .map((d) => d.toISOString()),
      target: fc.record({
        type: fc.constantFrom('shop', 'product', 'creator', 'content'),
        id: fc.string({ minLength: 1, maxLength: 128 }),
      }),
      tags: fc.array(
        fc
          .tuple(fc.stringMatching(/^[a-z][a-z0-9_]{0,31}$/), fc.stringMatching(/^[a-z0-9 ]{1,64}$/))
          .map(([d, v]) => `${d}:${v}`),
        { maxLength: 32 },
      ),
    },
    { requiredKeys: ['type', 'target', 'userId'] },
  );

  it('every valid envelope becomes a valid topic message that keeps its eventId and is keyed by a real id', () => {
    fc.assert(
      fc.property(arbEvent, (e) => {
        const r = normalizeEvent(e, options);
        if (!r.ok) return r.errors.every((x) => x.path === 'userId'); // only both-placeholder ids may refuse
        return (
          topicMessageSchema.safeParse(r.value).success &&
          (e.eventId === undefined || r.value.eventId === e.eventId) &&
          r.value.profileKey === (r.value.userId ?? r.value.anonymousId)
        );
      }),
    );
  });
});
