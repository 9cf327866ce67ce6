/**
 * Ids that SDKs send when they have no real id. They never merge two profiles (docs/model.md §4.4):
 * merging on "anonymous" or "0" would fuse thousands of strangers into one person.
 */
const PLACEHOLDERS = new Set(['', '0', '-1', 'anonymous', 'anon', 'null', 'undefined', 'none', 'nil', 'unknown', 'guest', 'nan', 'false', 'true', '[object object]']);

export function isPlaceholderId(id: string | undefined | null): boolean {
  if (id === undefined || id === null) return true;
  const normalized = id.trim().toLowerCase();
  return PLACEHOLDERS.has(normalized) || /^0+$/.test(normalized);
}

/**
 * How many alias hops a lookup follows before it gives up. Links chain only when an id that
 * others were linked to is itself linked later (an older userId aliased to a new one), so real
 * chains are short; a longer one can only come from a bug and is reported, never looped on.
 */
export const MAX_ALIAS_HOPS = 8;

/** `from`'s person is the same as `to`'s: `from`'s profile merges into `to`'s (docs/model.md §4.4). */
export type IdLink = { from: string; to: string };

/** The fields of a topic message the identity rule reads. */
type LinkingMessage =
  | { kind: 'event' }
  | { kind: 'identify'; userId: string; anonymousId?: string | undefined }
  | { kind: 'alias'; userId: string; previousId: string };

/**
 * The identity rule, the one both stores follow (Redis aliases in the scorer, Postgres
 * identities in the segmenter):
 * - `identify` with a real `anonymousId` links it to `userId`; `alias` links `previousId` to
 *   `userId`; events link nothing;
 * - a placeholder id on either side, or an id linked to itself, links nothing;
 * - `to` is resolved first: linking to an id that was merged elsewhere links to where it went;
 *   a link whose `to` already resolves to `from`'s person changes nothing (no loops);
 * - the first link of an id wins: once `from` belongs to another person, a later message
 *   linking it elsewhere changes nothing (the stores log it).
 */
export function linkOf(m: LinkingMessage): IdLink | undefined {
  if (m.kind === 'event') return undefined;
  const from = m.kind === 'identify' ? m.anonymousId : m.previousId;
  if (from === undefined || from === m.userId || isPlaceholderId(from) || isPlaceholderId(m.userId)) return undefined;
  return { from, to: m.userId };
}
