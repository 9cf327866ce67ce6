import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** At most this many accepted secrets are remembered (there are as many as configured: a few). */
const MAX_REMEMBERED = 64;

/**
 * Finds what a presented secret (write key, API token) stands for. Every configured secret is
 * compared, each in constant time over fixed-length digests, so response timing reveals neither
 * which secret nor how much of it matched.
 *
 * A secret once accepted is remembered as presented, so that a client's next requests cost one
 * map lookup instead of a SHA-256 and a comparison per configured secret (~3 % of the query API's
 * CPU per profile read, BENCHMARKS.md "Reads"). Only accepted secrets are remembered (a caller
 * cannot grow the map by guessing), and what a lookup's time could tell is only that a secret
 * just like it was accepted before — which the answer's status says anyway. Unknown secrets are
 * compared in full every time, as before.
 */
export function createSecretLookup<T>(
  secrets: ReadonlyMap<string, T>,
): (presented: string | undefined) => T | undefined {
  const entries = [...secrets].map(([secret, value]) => ({ digest: digest(secret), value }));
  const accepted = new Map<string, T>();
  return (presented) => {
    if (presented === undefined) return undefined;
    const known = accepted.get(presented);
    if (known !== undefined) return known;
    const d = digest(presented);
    let found: T | undefined;
    for (const entry of entries) if (timingSafeEqual(d, entry.digest)) found = entry.value;
    if (found !== undefined && accepted.size < MAX_REMEMBERED) accepted.set(presented, found);
    return found;
  };
}
