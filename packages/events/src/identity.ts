/**
 * Ids that SDKs send when they have no real id. They never merge two profiles (docs/model.md §4.4):
 * merging on "anonymous" or "0" would fuse thousands of strangers into one person.
 */
const PLACEHOLDERS = new Set([
  '',
  '0',
  '-1',
  'anonymous',
  'anon',
  'null',
  'undefined',
  'none',
  'nil',
  'unknown',
  'guest',
  'nan',
  'false',
  'true',
  '[object object]',
]);

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

/**
 * Default of MAX_MERGED_IDS (docs/model.md §4.4): the most ids one profile takes in by merges. A
 * link that would take a profile past it is refused in both stores, so one misbehaving client
 * cannot fold thousands of people into one "mega-profile".
 */
export const MAX_MERGED_IDS = 100;

/**
 * The merged-id cap, the one rule both stores follow: `to`'s profile already holds `merged` ids
 * merged into it, and the link brings `incoming` more (the linked id and every id merged into it
 * before). The link is refused when the total would pass `cap`; its message's other effects (an
 * identify's traits, the events of both ids) apply as for a message without the link, and both
 * ids stay separate people.
 */
export function linkPassesMergedIdCap(merged: number, incoming: number, cap: number): boolean {
  return merged + incoming > cap;
}

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

/** The fields of a topic message that name a person. */
type NamingMessage = {
  profileKey: string;
  userId?: string | undefined;
  anonymousId?: string | undefined;
  previousId?: string | undefined;
};

/**
 * Every id a message names (profile key, userId, anonymousId, previousId): an erasure
 * suppresses a message that names any erased id (docs/api.md §5.7), in both consumers alike.
 */
export function idsNamedBy(m: NamingMessage): string[] {
  const key = m.profileKey;
  // nearly every message names only its profile key: its list without the intermediate arrays and Set
  if ((m.userId ?? key) === key && (m.anonymousId ?? key) === key && (m.previousId ?? key) === key) return [key];
  const ids = [m.profileKey, m.userId, m.anonymousId, m.previousId].filter((id): id is string => id !== undefined);
  return [...new Set(ids)];
}

/** Adds the ids `idsNamedBy` gives to `into`, without its arrays (a consumer's ids of a whole chunk). */
export function addIdsNamedBy(m: NamingMessage, into: Set<string>): void {
  into.add(m.profileKey);
  if (m.userId !== undefined) into.add(m.userId);
  if (m.anonymousId !== undefined) into.add(m.anonymousId);
  if (m.previousId !== undefined) into.add(m.previousId);
}
