/**
 * Ids that SDKs send when they have no real id. They never merge two profiles (SPEC §4.4):
 * merging on "anonymous" or "0" would fuse thousands of strangers into one person.
 */
const PLACEHOLDERS = new Set(['', '0', '-1', 'anonymous', 'anon', 'null', 'undefined', 'none', 'nil', 'unknown', 'guest', 'nan', 'false', 'true', '[object object]']);

export function isPlaceholderId(id: string | undefined | null): boolean {
  if (id === undefined || id === null) return true;
  const normalized = id.trim().toLowerCase();
  return PLACEHOLDERS.has(normalized) || /^0+$/.test(normalized);
}
