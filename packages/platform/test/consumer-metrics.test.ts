import { PartitionProgress } from '../src/consumer-metrics';

describe('PartitionProgress', () => {
  let now = 0;
  const progress = () => new PartitionProgress(1000, () => now);
  beforeEach(() => {
    now = 0;
  });

  it('counts a partition stalled once messages wait and its position has not moved for the threshold', () => {
    const p = progress();
    p.seen(0, 5);
    now = 1000;
    expect(p.stalled()).toEqual([]);
    now = 1001;
    p.seen(0, 8);
    expect(p.stalled()).toEqual([0]);
    expect(p.lag()).toEqual(new Map([[0, 8]]));
  });

  it('does not count a partition with nothing waiting, however long it sits', () => {
    const p = progress();
    p.moved(1, 0);
    now = 60_000;
    expect(p.stalled()).toEqual([]);
  });

  it('starts the clock again when the position moves', () => {
    const p = progress();
    p.seen(2, 10);
    now = 900;
    p.moved(2, 4);
    now = 1800;
    expect(p.stalled()).toEqual([]);
    now = 1901;
    expect(p.stalled()).toEqual([2]);
  });

  it('forgets partitions taken away by a rebalance', () => {
    const p = progress();
    p.seen(0, 3);
    p.seen(1, 3);
    now = 5000;
    p.keepOnly([1]);
    expect(p.stalled()).toEqual([1]);
    expect([...p.lag().keys()]).toEqual([1]);
  });
});
