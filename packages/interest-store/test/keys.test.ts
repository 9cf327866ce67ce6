import { slotOf } from '@pstream/platform';
import { keys, personKeyList } from '../src';

describe('per-person keys on Redis Cluster', () => {
  const k = keys('pre');
  // ids ingest accepts: any non-placeholder string, braces included
  const ids = [
    'u-1',
    'anon-9f2c',
    '}x',
    '}',
    '{',
    '{x',
    'x{',
    'a}b',
    'a{b}c',
    '{}',
    '}{',
    '{{}}',
    'a}:int',
    '#1',
    'emoji-😀{',
  ];

  it('puts every key of one person in one slot, for every id', () => {
    for (const id of ids) {
      const slots = new Set(personKeyList(k.person(id)).map(slotOf));
      expect({ id, slots: slots.size }).toEqual({ id, slots: 1 });
    }
  });

  it('keeps `{id}` for ids without braces (the stored layout) and gives distinct people distinct keys', () => {
    expect(k.interests('u-1')).toBe('pre:p:{u-1}:int');
    const names = ids.map((id) => k.interests(id));
    expect(new Set(names).size).toBe(ids.length);
    // an id with braces gets a tag from its hash, so `}x` no longer hashes each key whole
    expect(k.interests('}x')).toMatch(/^pre:p:\{#[0-9a-z]+\}\}x:int$/);
  });
});
