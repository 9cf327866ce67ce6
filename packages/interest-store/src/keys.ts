/**
 * Redis key layout (the table in services/scorer/README.md). Every key of one person carries the
 * same hash tag `{…}` (personTag), so on Redis Cluster all of a person's keys live in one slot and
 * one script can touch them together. A script never touches two people's keys: a merge is a
 * sequence of single-person steps (`merge` in store.ts), so the layout stays Cluster-ready.
 */
export type PersonKeys = {
  /**
   * String: the person's event-time state and dedupe record, `version|` + the packed state (state.ts): what the scorer
   * reads and writes back.
   */
  state: string;
  /**
   * Sorted set: tag → forward-decayed score Σ w·2^((t−L)/H), as versions before the state carried its scores
   * (state.ts) wrote it for readers; no longer written, read only for a state without its scores (read.ts), and
   * removed by the person's next whole write.
   */
  interests: string;
  /**
   * Sorted set of the layout before event time: applied events' dedupe members
   * (`source|eventId@profileKey`, or `source|eventId` as older versions wrote them; PreparedEvent in
   * store.ts) → receive time (ms). Read once, as digests, into the state's
   * dedupe record (state.ts legacyState) and removed; the state keeps no member in this form.
   */
  seen: string;
  /** Hash of the layout before event time: open visits (packed, state.ts legacyState); read once and removed. */
  visits: string;
  /** Hash of the layout before event time: follow records (packed); read once and removed. */
  follows: string;
  /** String: the profile this one was merged into (§4.4); never expires. */
  alias: string;
  /** Set: profile keys merged into this one (their state was imported here). */
  merged: string;
};

export type Keys = {
  person(profileKey: string): PersonKeys;
  /** A person's state string (`PersonKeys.state`), without building the other keys. */
  state(profileKey: string): string;
  /** A person's alias record (`PersonKeys.alias`). */
  alias(profileKey: string): string;
  /** The `interests` sorted set of a person (`PersonKeys.interests`). */
  interests(profileKey: string): string;
  /** The old layout's dedupe set (PersonKeys.seen). */
  seen(profileKey: string): string;
  /** String: JSON array of the tags of a catalog target `type:id` (§5.6). */
  catalog(targetKey: string): string;
  /**
   * The per-tag interest index of audiences and similar people (tag-index.ts): person → stored
   * forward-decayed score in one tag, in buckets `tagBucket(tag, 0 … n−1)` (sorted sets small enough
   * to stay listpacks) described by `tagMeta(tag)` (hash: `n` buckets, `c` entries, `l` = 1 while
   * `legacyTag(tag)` still holds entries). Every key of a tag carries the TAG as its hash tag (one
   * slot per tag), written after the per-person script, never inside it.
   */
  tagMeta(tag: string): string;
  /** Sorted set: bucket `i` of a tag's index (linear hashing of a hash of the person, tag-index.ts). */
  tagBucket(tag: string, i: number): string;
  /**
   * Sorted set: a tag's whole index as versions before buckets wrote it (one key per tag); read
   * beside the buckets and drained into them by the writes (tag-index.ts), then gone.
   */
  legacyTag(tag: string): string;
  /**
   * Whether writes put a tag's index into buckets (TAG_INDEX_BUCKETS; tag-index.ts): a tag not in
   * buckets yet is otherwise written as one set (`legacyTag`). Readers read either layout.
   */
  tagBuckets: boolean;
  /**
   * How writes lay out a tag's index (TAG_INDEX_LAYOUT): `range` (the default) — buckets by score range
   * (tag-range.ts: `tagRangeBucket`, `tagDirectory`, `tagCounts`); `hash` — buckets by a hash of the person
   * (`tagBucket`, as `tagBuckets`); `set` — one sorted set (`legacyTag`). Readers read every layout.
   */
  tagLayout: TagLayout;
  /** Sorted set: the score-range buckets of a tag (member: bucket id, score: the lowest score it holds; tag-range.ts). */
  tagDirectory(tag: string): string;
  /** Hash: bucket id → how many entries that score-range bucket holds. */
  tagCounts(tag: string): string;
  /** Sorted set: score-range bucket `id` of a tag (person → stored score). */
  tagRangeBucket(tag: string, id: number | string): string;
  /** Sorted set: scratch key of a tag's move into score-range buckets (tag-range.ts `moveTagIndex`), gone after it. */
  tagMoving(tag: string): string;
  /** Pattern matching every per-person key of this prefix (the scorer's derived state). */
  personPattern: string;
  /** Pattern matching every per-tag index key of this prefix (derived from the per-person keys). */
  tagPattern: string;
};

/**
 * The part of a person's keys that holds their hash tag and id. Redis hashes the text between the
 * first `{` and the next `}` — so an id with braces (ingest accepts any string) could split a
 * person's keys over slots (an id starting with `}` gives an empty tag: each key hashed whole) or
 * let one id's tag end early. Such an id gets a tag derived from a hash of it instead, `{#…}`,
 * followed by the id itself (keys stay distinct: `#` and braces never both occur in a plain
 * tag). Every other id keeps `{id}`, the layout readers and existing data use.
 */
export function personTag(profileKey: string): string {
  if (!/[{}]/.test(profileKey)) return `{${profileKey}}`;
  let h = 2166136261;
  for (let i = 0; i < profileKey.length; i++) h = Math.imul(h ^ profileKey.charCodeAt(i), 16777619) >>> 0;
  return `{#${h.toString(36)}}${profileKey}`;
}

/** The layouts of the per-tag index a writer may use (Keys.tagLayout). */
export type TagLayout = 'range' | 'hash' | 'set';

export function keys(prefix: string, options: { tagBuckets?: boolean; tagLayout?: TagLayout } = {}): Keys {
  const tagLayout: TagLayout = options.tagLayout ?? (options.tagBuckets ? 'hash' : 'range');
  const base = (k: string) => `${prefix}:p:${personTag(k)}`;
  return {
    person: (k) => {
      const b = base(k);
      return {
        state: `${b}:st`,
        interests: `${b}:int`,
        seen: `${b}:seen`,
        visits: `${b}:vis`,
        follows: `${b}:fol`,
        alias: `${b}:alias`,
        merged: `${b}:merged`,
      };
    },
    state: (k) => `${base(k)}:st`,
    alias: (k) => `${base(k)}:alias`,
    interests: (k) => `${base(k)}:int`,
    seen: (k) => `${base(k)}:seen`,
    catalog: (t) => `${prefix}:cat:{${t}}`,
    tagMeta: (t) => `${prefix}:tag:{${t}}:m`,
    tagBucket: (t, i) => `${prefix}:tag:{${t}}:${i}`,
    legacyTag: (t) => `${prefix}:tag:{${t}}`,
    tagBuckets: tagLayout === 'hash',
    tagLayout,
    tagDirectory: (t) => `${prefix}:tag:{${t}}:rd`,
    tagCounts: (t) => `${prefix}:tag:{${t}}:rc`,
    tagRangeBucket: (t, id) => `${prefix}:tag:{${t}}:r${id}`,
    tagMoving: (t) => `${prefix}:tag:{${t}}:mv`,
    personPattern: `${prefix}:p:*`,
    tagPattern: `${prefix}:tag:*`,
  };
}

/** Every key a person may have (erasure removes them all). */
export function personKeyList(p: PersonKeys): string[] {
  return [p.state, p.interests, p.seen, p.alias, p.merged, p.visits, p.follows];
}
