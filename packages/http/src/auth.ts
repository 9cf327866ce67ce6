import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Finds what a presented secret (write key, API token) stands for. Every configured secret is
 * compared, each in constant time over fixed-length digests, so response timing reveals neither
 * which secret nor how much of it matched.
 */
export function createSecretLookup<T>(
  secrets: ReadonlyMap<string, T>,
): (presented: string | undefined) => T | undefined {
  const entries = [...secrets].map(([secret, value]) => ({ digest: digest(secret), value }));
  return (presented) => {
    if (presented === undefined) return undefined;
    const d = digest(presented);
    let found: T | undefined;
    for (const entry of entries) if (timingSafeEqual(d, entry.digest)) found = entry.value;
    return found;
  };
}
