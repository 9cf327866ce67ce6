import { CHANGES_PER_CALL, tagCalls, type TagChange, type TagChanges } from '../src/tag-index';

/** `n` changes of one tag, people p0 … p(n-1). */
function changesOf(tag: string, n: number): TagChanges {
  const list: TagChange[] = Array.from({ length: n }, (_, i) => ({ tag, person: `p${i}`, score: String(i) }));
  return [tag, list];
}

describe('the index write cut into script calls', () => {
  // A script call holds every other Redis client while it runs; its time grows with its changes.
  it(`puts at most ${CHANGES_PER_CALL} changes of a tag in one call, every change once and in order`, () => {
    const many = changesOf('category:tea', 2 * CHANGES_PER_CALL + 100);
    const few = changesOf('brand:x', 3);
    const calls = tagCalls([many, few], (c, args) => args.push(c.person, c.score ?? ''));
    expect(calls.map((c) => [c.tag, c.args.length / 2])).toEqual([
      ['category:tea', CHANGES_PER_CALL],
      ['category:tea', CHANGES_PER_CALL],
      ['category:tea', 100],
      ['brand:x', 3],
    ]);
    const written = calls.filter((c) => c.tag === 'category:tea').flatMap((c) => c.args.filter((_, i) => i % 2 === 0));
    expect(written).toEqual(many[1].map((c) => c.person));
    expect(calls.every((c) => c.of === (c.tag === 'brand:x' ? few : many))).toBe(true);
  });

  it('keeps the cap at 250 (≈ 3–4 ms of Redis a call; 1 000 held it 16–20 ms: BENCHMARKS.md)', () => {
    expect(CHANGES_PER_CALL).toBe(250);
  });
});
