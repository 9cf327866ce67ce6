import { createTokenBuckets } from '../src/rate-limit';

describe('token buckets', () => {
  it('allows a burst, then one request per refill, per key', () => {
    let now = 0;
    const buckets = createTokenBuckets({ ratePerSec: 2, burst: 3, now: () => now });
    expect([1, 2, 3].map(() => buckets.take('a').ok)).toEqual([true, true, true]);
    expect(buckets.take('a')).toEqual({ ok: false, retryAfterSec: 1 });
    expect(buckets.take('b').ok).toBe(true);
    now += 500; // half a second refills one token at 2/s
    expect(buckets.take('a').ok).toBe(true);
    expect(buckets.take('a').ok).toBe(false);
  });

  it('never keeps more than the burst and says how long to wait', () => {
    let now = 0;
    const buckets = createTokenBuckets({ ratePerSec: 0.25, burst: 1, now: () => now });
    now += 3_600_000;
    expect(buckets.take('a').ok).toBe(true);
    expect(buckets.take('a')).toEqual({ ok: false, retryAfterSec: 4 });
  });
});
