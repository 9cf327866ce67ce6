import fc from 'fast-check';
import { BoundedMap } from '../src/bounded-map';

describe('BoundedMap', () => {
  it('keeps what a Map dropping its first key past the limit keeps, in the same order', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.tuple(fc.constantFrom('get', 'set', 'delete', 'refresh'), fc.integer({ min: 0, max: 15 })), {
          maxLength: 200,
        }),
        (limit, ops) => {
          const bounded = new BoundedMap<number, number>(limit);
          const plain = new Map<number, number>();
          for (const [n, [op, key]] of ops.entries()) {
            if (op === 'get') expect(bounded.get(key)).toBe(plain.get(key));
            else if (op === 'delete') expect(bounded.delete(key)).toBe(plain.delete(key));
            else {
              // refresh: taken out and put back (the store's cache), set: in place
              if (op === 'refresh') {
                bounded.delete(key);
                plain.delete(key);
              }
              bounded.set(key, n);
              plain.set(key, n);
              if (plain.size > limit) plain.delete(plain.keys().next().value!);
            }
            expect([...bounded]).toEqual([...plain]);
          }
        },
      ),
    );
  });
});
