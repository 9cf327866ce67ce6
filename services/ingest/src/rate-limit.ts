/** The outcome of asking for a token: go ahead, or wait `retryAfterSec` (≥ 1, for Retry-After). */
export type Take = { ok: true } | { ok: false; retryAfterSec: number };

export type TokenBuckets = { take(key: string): Take };

/**
 * A token bucket per key: `ratePerSec` tokens flow in, at most `burst` are kept, a request takes
 * one. Pure apart from the injected clock. Keys are the configured write keys only (requests with
 * unknown keys are refused before they get here), so the map cannot grow without bound.
 */
export function createTokenBuckets(options: { ratePerSec: number; burst: number; now?: () => number }): TokenBuckets {
  const now = options.now ?? Date.now;
  const buckets = new Map<string, { tokens: number; at: number }>();
  return {
    take(key) {
      const t = now();
      const bucket = buckets.get(key) ?? { tokens: options.burst, at: t };
      bucket.tokens = Math.min(options.burst, bucket.tokens + ((t - bucket.at) / 1000) * options.ratePerSec);
      bucket.at = t;
      buckets.set(key, bucket);
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        return { ok: true };
      }
      return { ok: false, retryAfterSec: Math.max(1, Math.ceil((1 - bucket.tokens) / options.ratePerSec)) };
    },
  };
}
