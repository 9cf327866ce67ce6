import type { ProfileEvent } from '@pstream/events';
import { createConverter, foldEvents } from '../src/fold';

const convert = createConverter('CNY', new Map([['USD', 7]]));
let n = 0;
const ev = (type: string, key: string, occurredAt: string, extra: Partial<ProfileEvent> = {}) => ({
  key,
  event: {
    v: 1,
    kind: 'event',
    eventId: `e${++n}`,
    source: 's',
    type,
    profileKey: key,
    userId: key,
    occurredAt,
    receivedAt: occurredAt,
    target: { type: 'shop', id: 'x' },
    tags: ['a:b'],
    ...extra,
  } as ProfileEvent,
});

describe('foldEvents', () => {
  it('sums a batch per primary key so each upsert touches a row once', () => {
    const rows = foldEvents(
      [
        ev('click', 'u', '2026-05-01T10:00:00.000Z'),
        ev('click', 'u', '2026-05-01T11:00:00.000Z'),
        ev('like', 'u', '2026-05-02T00:00:00.000Z'),
      ],
      convert,
    );
    expect(rows.people).toEqual([
      {
        key: 'u',
        firstSeen: '2026-05-01T10:00:00.000Z',
        lastActive: '2026-05-02T00:00:00.000Z',
        social: ['2026-05-02T00:00:00.000Z'],
      },
    ]);
    expect(rows.counts).toEqual([
      { key: 'u', type: 'click', n: 2 },
      { key: 'u', type: 'like', n: 1 },
    ]);
    expect(rows.activity).toEqual([
      { key: 'u', day: '2026-05-01', type: 'click', targetType: 'shop', targetId: 'x', tags: 'a:b', n: 2 },
      { key: 'u', day: '2026-05-02', type: 'like', targetType: 'shop', targetId: 'x', tags: 'a:b', n: 1 },
    ]);
  });

  it('converts purchases into the base currency and leaves unknown currencies unconverted', () => {
    const rows = foldEvents(
      [
        ev('purchase', 'u', '2026-05-01T00:00:00.000Z', { amount: 10, currency: 'USD' }),
        ev('purchase', 'u', '2026-05-01T00:00:00.000Z', { amount: 10, currency: 'CNY' }),
        ev('purchase', 'u', '2026-05-01T00:00:00.000Z', { amount: 10, currency: 'JPY' }),
      ],
      convert,
    );
    expect(rows.purchases.map((p) => p.baseAmount)).toEqual([70, 10, null]);
  });

  it('keeps the latest follow or unfollow per target by event time, and every one in the history', () => {
    const rows = foldEvents(
      [
        ev('unfollow', 'u', '2026-05-03T00:00:00.000Z'),
        ev('follow', 'u', '2026-05-01T00:00:00.000Z'),
        ev('follow', 'u', '2026-05-02T00:00:00.000Z'),
      ],
      convert,
    );
    expect(rows.follows).toEqual([
      { key: 'u', targetType: 'shop', targetId: 'x', following: false, at: '2026-05-03T00:00:00.000Z' },
    ]);
    expect(rows.followHistory).toHaveLength(3);
  });

  it('keeps only the newest 16 social interactions per person', () => {
    const likes = Array.from({ length: 20 }, (_, i) =>
      ev('like', 'u', new Date(Date.UTC(2026, 4, 1 + i)).toISOString()),
    );
    const { people } = foldEvents(likes, convert);
    expect(people[0]!.social).toHaveLength(16);
    expect(people[0]!.social[0]).toBe('2026-05-20T00:00:00.000Z');
  });
  it('lists each row where its key first appears in the batch, people interleaved', () => {
    const rows = foldEvents(
      [
        ev('click', 'u', '2026-05-01T10:00:00.000Z'),
        ev('click', 'v', '2026-05-01T10:00:00.000Z'),
        ev('like', 'u', '2026-05-01T11:00:00.000Z'),
        ev('click', 'u', '2026-05-02T10:00:00.000Z', { tags: [] }),
        ev('click', 'v', '2026-05-01T12:00:00.000Z'),
        ev('click', 'u', '2026-05-01T09:00:00.000Z'),
      ],
      convert,
    );
    expect(rows.counts).toEqual([
      { key: 'u', type: 'click', n: 3 },
      { key: 'v', type: 'click', n: 2 },
      { key: 'u', type: 'like', n: 1 },
    ]);
    const row = (key: string, day: string, type: string, tags: string, n: number) => ({
      key,
      day,
      type,
      targetType: 'shop',
      targetId: 'x',
      tags,
      n,
    });
    expect(rows.activity).toEqual([
      row('u', '2026-05-01', 'click', 'a:b', 2),
      row('v', '2026-05-01', 'click', 'a:b', 2),
      row('u', '2026-05-01', 'like', 'a:b', 1),
      row('u', '2026-05-02', 'click', '', 1),
    ]);
    expect(rows.people.map((p) => [p.key, p.firstSeen, p.lastActive])).toEqual([
      ['u', '2026-05-01T09:00:00.000Z', '2026-05-02T10:00:00.000Z'],
      ['v', '2026-05-01T10:00:00.000Z', '2026-05-01T12:00:00.000Z'],
    ]);
  });
});
