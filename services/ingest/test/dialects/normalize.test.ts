import fc from 'fast-check';
import { isPlaceholderId } from '@pstream/events';
import { normalizeEvent } from '../../src/dialects';

const now = Date.parse('2026-11-20T00:00:00Z');
const base = { type: 'click', userId: 'u-1', target: { type: 'product', id: 'p-1' } };
const errorsOf = (input: unknown) => {
  const r = normalizeEvent(input, { source: 'web', now });
  return r.ok ? [] : r.errors;
};

describe('normalizeEvent', () => {
  it('stamps source, received time, profile key and an event id when absent', () => {
    const r = normalizeEvent(base, { source: 'web', now });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value).toMatchObject({
      v: 1,
      kind: 'event',
      source: 'web',
      profileKey: 'u-1',
      occurredAt: '2026-11-20T00:00:00.000Z',
      receivedAt: '2026-11-20T00:00:00.000Z',
      tags: [],
    });
    expect(r.value.eventId).toMatch(/^[0-9a-f-]{36}$/);
  });

  // The message's bytes on Kafka, field order included (sealed as they are; what every consumer parses): built field
  // by field, which the compiler does not check against ProfileEvent, so pinned here whole.
  it.each([
    [
      'every field, a duplicate tag',
      {
        eventId: 'e-1',
        type: 'purchase',
        userId: 'u-1',
        anonymousId: 'dev-9',
        occurredAt: '2026-11-19T23:00:00+08:00',
        target: { type: 'product', id: 'p-1' },
        tags: ['category:tea', 'brand:x', 'category:tea'],
        amount: 12.5,
        currency: 'CNY',
        quantity: 2,
        orderId: 'o-1',
        context: { page: '/p/1' },
      },
      '{"v":1,"kind":"event","eventId":"e-1","source":"web","type":"purchase","userId":"u-1","anonymousId":"dev-9","profileKey":"u-1","occurredAt":"2026-11-19T15:00:00.000Z","receivedAt":"2026-11-20T00:00:00.000Z","target":{"type":"product","id":"p-1"},"tags":["category:tea","brand:x"],"amount":12.5,"currency":"CNY","quantity":2,"orderId":"o-1","context":{"page":"/p/1"}}',
    ],
    [
      'anonymousId only (a placeholder userId), dwell',
      {
        eventId: 'e-2',
        type: 'dwell',
        anonymousId: 'dev-9',
        userId: 'anonymous',
        target: { type: 'content', id: 'v-1' },
        dwellMs: 4000,
        tags: [],
      },
      '{"v":1,"kind":"event","eventId":"e-2","source":"web","type":"dwell","anonymousId":"dev-9","profileKey":"dev-9","occurredAt":"2026-11-20T00:00:00.000Z","receivedAt":"2026-11-20T00:00:00.000Z","target":{"type":"content","id":"v-1"},"tags":[],"dwellMs":4000}',
    ],
    [
      'userId only, no tags',
      { eventId: 'e-3', type: 'like', userId: 'u-2', target: { type: 'shop', id: 's-1' } },
      '{"v":1,"kind":"event","eventId":"e-3","source":"web","type":"like","userId":"u-2","profileKey":"u-2","occurredAt":"2026-11-20T00:00:00.000Z","receivedAt":"2026-11-20T00:00:00.000Z","target":{"type":"shop","id":"s-1"},"tags":[]}',
    ],
  ])('puts exactly this JSON on Kafka: %s', (_, input, json) => {
    const r = normalizeEvent(input, { source: 'web', now });
    expect(r.ok && JSON.stringify(r.value)).toBe(json);
  });

  it('keys by userId, else anonymousId', () => {
    const r = normalizeEvent({ ...base, userId: undefined, anonymousId: 'dev-9' }, { source: 'web', now });
    expect(r.ok && r.value.profileKey).toBe('dev-9');
  });

  it('converts the event time to UTC', () => {
    const r = normalizeEvent({ ...base, occurredAt: '2026-11-20T08:15:00+08:00' }, { source: 'web', now });
    expect(r.ok && r.value.occurredAt).toBe('2026-11-20T00:15:00.000Z');
  });

  it.each([
    ['no person id', { ...base, userId: undefined }, 'userId'],
    ['a bad event id', { ...base, eventId: 'has space' }, 'eventId'],
    ['an unknown type', { ...base, type: 'visit' }, 'type'],
    ['a tag without dimension', { ...base, tags: ['dress'] }, 'tags.0'],
    ['an upper-case dimension', { ...base, tags: ['Category:dress'] }, 'tags.0'],
    ['a 65-character tag value', { ...base, tags: [`brand:${'x'.repeat(65)}`] }, 'tags.0'],
    ['33 tags', { ...base, tags: Array.from({ length: 33 }, (_, i) => `t:${i}`) }, 'tags'],
    ['dwell without dwellMs', { ...base, type: 'dwell' }, 'dwellMs'],
    ['dwellMs on a click', { ...base, dwellMs: 5 }, 'dwellMs'],
    ['a negative dwell', { ...base, type: 'dwell', dwellMs: -1 }, 'dwellMs'],
    ['a purchase without amount', { ...base, type: 'purchase', currency: 'CNY' }, 'amount'],
    ['an amount on a like', { ...base, type: 'like', amount: 3 }, 'amount'],
    ['an orderId on a click', { ...base, orderId: 'o-1' }, 'orderId'],
    ['an empty orderId', { ...base, type: 'purchase', amount: 1, currency: 'CNY', orderId: '' }, 'orderId'],
    ['an unknown field', { ...base, dwel_ms: 3 }, ''],
    ['a target of unknown type', { ...base, target: { type: 'page', id: 'x' } }, 'target.type'],
    ['a time more than 24 h ahead', { ...base, occurredAt: '2026-11-21T00:00:01Z' }, 'occurredAt'],
    ['a time without zone', { ...base, occurredAt: '2026-11-20T00:00:00' }, 'occurredAt'],
  ])('refuses %s, naming the field', (_name, input, path) => {
    expect(errorsOf(input).map((e) => e.path)).toContain(path);
  });

  it('carries a purchase’s orderId onto the topic message', () => {
    const r = normalizeEvent(
      { ...base, type: 'purchase', amount: 199, currency: 'CNY', orderId: 'o-1' },
      { source: 'web', now },
    );
    expect(r.ok && r.value.orderId).toBe('o-1');
  });

  it('accepts a time exactly 24 h ahead and Chinese tag values', () => {
    expect(errorsOf({ ...base, occurredAt: '2026-11-21T00:00:00Z', tags: ['category:连衣裙'] })).toEqual([]);
  });

  it('never throws, whatever the input', () => {
    fc.assert(
      fc.property(fc.anything(), (input) => {
        const r = normalizeEvent(input, { source: 's', now });
        return r.ok || r.errors.length > 0;
      }),
    );
  });
});

describe('isPlaceholderId', () => {
  it.each(['anonymous', 'null', 'undefined', '0', '000', '', ' Null '])('treats %p as a placeholder', (id) => {
    expect(isPlaceholderId(id)).toBe(true);
  });
  it.each(['u-1', 'dev-9f2c', '10'])('treats %p as a real id', (id) => expect(isPlaceholderId(id)).toBe(false));
});
