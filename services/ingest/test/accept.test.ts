import { MAX_EVENT_BYTES, onlyTooLarge, sortItems } from '../src/accept';
import type { TopicMessage } from '@pstream/events';

const message = (pad: string) => ({ kind: 'event', profileKey: 'u', pad }) as unknown as TopicMessage;

describe('sortItems', () => {
  it('accepts an item whole, keyed by profile key, or lists its errors by index', () => {
    const sorted = sortItems([1, 2, 3], (i) =>
      i === 2
        ? { ok: false, errors: [{ path: 'x', message: 'bad' }] }
        : { ok: true, value: [message('a'), message('b')] },
    );
    expect(sorted.accepted).toBe(2);
    expect(sorted.records).toHaveLength(4);
    expect(sorted.records[0]).toEqual({ key: 'u', value: JSON.stringify(message('a')), names: ['u'] });
    expect(sorted.rejected).toEqual([{ index: 1, errors: [{ path: 'x', message: 'bad' }] }]);
  });

  it('names every real id of a message, for sealing under all their keys, and no placeholder', () => {
    const m = { kind: 'event', profileKey: 'u-1', userId: 'u-1', anonymousId: 'dev-9' } as unknown as TopicMessage;
    const p = { kind: 'event', profileKey: 'u-2', userId: 'u-2', anonymousId: 'anonymous' } as unknown as TopicMessage;
    const sorted = sortItems([1], () => ({ ok: true, value: [m, p] }));
    expect(sorted.records.map((r) => r.names)).toEqual([['u-1', 'dev-9'], ['u-2']]);
  });

  it('refuses an item any of whose messages is over 32 KB, counting bytes not characters', () => {
    const chinese = '连'.repeat(Math.ceil(MAX_EVENT_BYTES / 3)); // under 32 K characters, over 32 KB in UTF-8
    const sorted = sortItems([0, 1], (i) => ({
      ok: true,
      value: i === 0 ? [message('a'), message(chinese)] : [message('x'.repeat(MAX_EVENT_BYTES - 100))],
    }));
    expect(sorted.accepted).toBe(1);
    expect(sorted.records).toHaveLength(1);
    expect(onlyTooLarge(sorted.rejected)).toBe(true);
  });
});
