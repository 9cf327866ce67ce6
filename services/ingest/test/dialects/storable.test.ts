import { findUnstorable, MAX_JSON_DEPTH, topicMessageSchema } from '@pstream/events';
import { mapSegmentTrack, normalizeAlias, normalizeEvent, normalizeIdentify } from '../../src/dialects';

const now = Date.parse('2026-11-20T00:00:00Z');
const options = { source: 'web', now };
const base = { type: 'click', userId: 'u-1', target: { type: 'product', id: 'p-1' } };
const errorsOf = (r: { ok: boolean; errors?: unknown }) => (r.ok ? [] : r.errors);

/** A value nested `depth` levels deep: {a:{a:…}}. */
function nested(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
}

describe('what every store can hold', () => {
  it.each([
    ['NUL in userId', { ...base, userId: 'probe\u0000nul' }, 'userId', /control character U\+0000/],
    ['a tab in the target id', { ...base, target: { type: 'product', id: 'p\t1' } }, 'target.id', /U\+0009/],
    ['DEL in anonymousId', { ...base, anonymousId: 'a\u007fb' }, 'anonymousId', /U\+007F/],
    [
      'a lone high surrogate in a tag',
      { ...base, tags: ['category:dr\ud800ess'] },
      'tags.0',
      /lone UTF-16 surrogate \(U\+D800\)/,
    ],
    [
      'a lone low surrogate in context',
      { ...base, context: { device: { model: '\udc00' } } },
      'context.device.model',
      /lone UTF-16 surrogate/,
    ],
    [
      'a control character in a context key',
      { ...base, context: { device: { 'a\u0001': 'x' } } },
      'context.device.a\u0001',
      /the key contains/,
    ],
  ])('refuses %s, naming the path', (_name, input, path, message) => {
    const errors = errorsOf(normalizeEvent(input, options)) as { path: string; message: string }[];
    expect(errors).toHaveLength(1);
    expect(errors[0]!.path).toBe(path);
    expect(errors[0]!.message).toMatch(message);
  });

  it('keeps valid surrogate pairs and other non-ASCII text', () => {
    const r = normalizeEvent(
      { ...base, userId: '用户-😀', tags: ['category:連衣裙😀'], context: { device: { model: 'Pixel 9 — é' } } },
      options,
    );
    expect(r.ok).toBe(true);
  });

  it('refuses nesting deeper than the limit, without overflowing on 5 000 levels', () => {
    const ok = normalizeEvent(
      { ...base, context: { device: nested(MAX_JSON_DEPTH - 3) as Record<string, unknown> } },
      options,
    );
    expect(ok.ok).toBe(true);
    for (const depth of [MAX_JSON_DEPTH, 5_000, 100_000]) {
      const errors = errorsOf(
        normalizeEvent({ ...base, context: { device: nested(depth) as Record<string, unknown> } }, options),
      ) as { path: string; message: string }[];
      expect(errors).toHaveLength(1);
      expect(errors[0]!.message).toBe(`is nested deeper than ${MAX_JSON_DEPTH} levels`);
      expect(errors[0]!.path).toMatch(/^context\.device(\.a)+$/);
    }
  });

  it('applies to identify traits and alias ids too', () => {
    expect(errorsOf(normalizeIdentify({ userId: 'u-1', traits: { city: 'Hang\u0000zhou' } }, options))).toEqual([
      { path: 'traits.city', message: 'contains the control character U+0000 at character 4' },
    ]);
    expect(errorsOf(normalizeIdentify({ userId: 'u-1', traits: { 'bad\u0000name': 1 } }, options))).toMatchObject([
      { path: 'traits.bad\u0000name' },
    ]);
    expect(errorsOf(normalizeAlias({ userId: 'u-1', previousId: 'x\ud83d' }, options))).toMatchObject([
      { path: 'previousId' },
    ]);
  });

  it('names the Segment field a refused value came from', () => {
    const r = mapSegmentTrack(
      { type: 'track', event: 'Product Clicked', userId: 'u-1', properties: { product_id: 'p\u00001' } },
      options,
    );
    expect(errorsOf(r)).toMatchObject([
      { path: expect.stringMatching(/^properties\.product_id/), message: expect.stringMatching(/U\+0000/) },
    ]);
  });

  it('is part of the topic contract, so both consumers refuse what ingest refuses', () => {
    const ok = normalizeEvent(base, options);
    if (!ok.ok) throw new Error('expected a valid event');
    expect(topicMessageSchema.safeParse(ok.value).success).toBe(true);
    const r = topicMessageSchema.safeParse({ ...ok.value, userId: 'probe\u0000nul', profileKey: 'probe\u0000nul' });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]).toMatchObject({ path: ['userId'], message: expect.stringMatching(/U\+0000/) });
  });

  it('finds nothing in plain JSON', () => {
    expect(findUnstorable({ a: [1, 'two', { b: null, c: true }] })).toBeUndefined();
  });
});
