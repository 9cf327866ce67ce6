import { createHash } from 'node:crypto';
import { idDigest } from '@pstream/profile-store';
import { memoDigest } from '../src/processor';

describe("the scorer's memo of suppression-list digests", () => {
  it('answers what idDigest answers (SHA-256 hex of the UTF-8 id)', () => {
    const memo = memoDigest(idDigest, 10);
    for (const id of ['u-1', 'anon-é∂', '', 'x'.repeat(300)]) {
      expect(memo(id)).toBe(createHash('sha256').update(id, 'utf8').digest('hex'));
      expect(memo(id)).toBe(idDigest(id));
    }
  });

  it('hashes an id once while it is kept, and forgets the oldest beyond its size', () => {
    const calls: string[] = [];
    const memo = memoDigest((id) => {
      calls.push(id);
      return `d:${id}`;
    }, 2);
    expect([memo('a'), memo('b'), memo('a'), memo('b')]).toEqual(['d:a', 'd:b', 'd:a', 'd:b']);
    expect(calls).toEqual(['a', 'b']);
    memo('c'); // 'a' goes
    expect(memo('b')).toBe('d:b');
    expect(memo('a')).toBe('d:a');
    expect(calls).toEqual(['a', 'b', 'c', 'a']);
  });
});
