import { groupStatus, partitionStatus, type Commit } from '../../src/lag/burrow';

/** Commits one second apart starting at t=0: [offset, lag] pairs. */
const commits = (...pairs: [number, number][]): Commit[] =>
  pairs.map(([offset, lag], i) => ({ offset, lag, at: i * 1000 }));

describe('Burrow’s partition rules', () => {
  it('is OK when the lag was zero anywhere in the window, whatever else happened', () => {
    expect(partitionStatus(commits([5, 3], [5, 0], [5, 4]), 4, 2500)).toBe('OK');
  });

  it('is OK when there is no lag now', () => {
    expect(partitionStatus(commits([5, 3], [5, 4]), 0, 99_000)).toBe('OK');
  });

  it('is REWIND when the committed offset went backwards, before any other rule', () => {
    expect(partitionStatus(commits([10, 5], [12, 5], [4, 13]), 13, 99_000)).toBe('REWIND');
  });

  it('is STOP when the last commit is older than the window spans', () => {
    // window spans 2 s (0 → 2000); at 4001 the last commit is 2001 ms old
    expect(partitionStatus(commits([1, 5], [2, 5], [3, 5]), 5, 4001)).toBe('STOP');
    expect(partitionStatus(commits([1, 5], [2, 5], [3, 5]), 5, 4000)).not.toBe('STOP');
  });

  it('is STOP for a single old commit with lag (the window spans nothing)', () => {
    expect(partitionStatus(commits([3, 7]), 7, 1)).toBe('STOP');
  });

  it('is STALL when commits keep coming on the same offset while lag stays or grows', () => {
    expect(partitionStatus(commits([7, 3], [7, 3], [7, 5]), 5, 2000)).toBe('STALL');
  });

  it('needs two commits before calling a partition stalled', () => {
    expect(partitionStatus(commits([7, 3]), 3, 0)).toBe('OK');
  });

  it('is WARN when the offset moves but the lag never decreases', () => {
    expect(partitionStatus(commits([1, 3], [2, 3], [3, 6]), 6, 2000)).toBe('WARN');
  });

  it('is OK when the offset moves and the lag went down at least once', () => {
    expect(partitionStatus(commits([1, 3], [2, 6], [5, 4]), 4, 2000)).toBe('OK');
  });

  it('is OK with no commits at all', () => {
    expect(partitionStatus([], 10, 5000)).toBe('OK');
  });
});

describe('Burrow’s group status', () => {
  it('is ERR when any partition is STALL, STOP or REWIND', () => {
    for (const bad of ['STALL', 'STOP', 'REWIND'] as const) expect(groupStatus(['OK', 'WARN', bad])).toBe('ERR');
  });
  it('is WARN when the worst partition is WARN, else OK', () => {
    expect(groupStatus(['OK', 'WARN'])).toBe('WARN');
    expect(groupStatus(['OK', 'OK'])).toBe('OK');
    expect(groupStatus([])).toBe('OK');
  });
});
