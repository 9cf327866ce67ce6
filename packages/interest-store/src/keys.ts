/**
 * Redis key layout. Every key of one person carries the profile key as a hash tag `{…}`, so on
 * Redis Cluster all of a person's keys live in one slot and one script can touch them together.
 */
export type Keys = {
  /** Sorted set: tag → forward-decayed score Σ w·2^((t−L)/H). */
  interests(profileKey: string): string;
  /** Sorted set: `source|eventId` → receive time (ms); the dedupe record of applied events. */
  seen(profileKey: string): string;
};

export function keys(prefix: string): Keys {
  const base = (k: string) => `${prefix}:p:{${k}}`;
  return {
    interests: (k) => `${base(k)}:int`,
    seen: (k) => `${base(k)}:seen`,
  };
}
