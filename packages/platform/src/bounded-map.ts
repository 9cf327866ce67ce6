/**
 * A Map that forgets its oldest entries (insertion order; an entry deleted and set again is the newest) past
 * `limit`, for caches. It finds the oldest through one iterator kept across evictions: `map.keys().next()` on a Map
 * whose first entries were deleted walks over every deleted slot until V8 next rebuilds the table — thousands of
 * slots an eviction on a full cache of people (≈ 3.5 µs a write with 10 000 kept, against ≈ 0.2 µs this way).
 */
export class BoundedMap<K, V> extends Map<K, V> {
  private oldest: Iterator<K> | undefined;

  constructor(readonly limit: number) {
    super();
  }

  override set(key: K, value: V): this {
    super.set(key, value);
    while (this.size > this.limit) {
      // every key before the iterator's place was evicted or deleted: the next one it yields is the oldest
      let next = this.oldest?.next();
      if (next === undefined || next.done) {
        this.oldest = this.keys();
        next = this.oldest.next();
      }
      this.delete(next.value as K);
    }
    return this;
  }
}
