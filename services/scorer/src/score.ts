import { dedupeId, type ProfileEvent } from '@pstream/events';
import type { PreparedEvent } from '@pstream/interest-store';
import { explicitTags, targetTag, type ScoringEvent } from '@pstream/scoring';

/**
 * Turns a validated event into what the store needs: its dedupe member, its target key and its
 * explicit tags — the event's own, or the catalog's when it has none (§5.6). Pure; the catalog
 * lookup happens before, in one round trip per batch.
 */
export function prepareEvent(event: ProfileEvent, catalog: ReadonlyMap<string, string[]>): PreparedEvent {
  const key = targetTag(event.target);
  const occurredMs = Date.parse(event.occurredAt);
  return {
    profileKey: event.profileKey,
    member: `${event.source}|${dedupeId(event)}`,
    legacyMember: `${event.source}|${event.eventId}`,
    receivedMs: Date.parse(event.receivedAt),
    type: event.type,
    occurredMs,
    targetKey: key,
    dwellMs: event.dwellMs,
    tags: explicitTags(event.tags.length > 0 ? event.tags : (catalog.get(key) ?? []), event.target),
  };
}

/** The same event as the pure model sees it (for tests and tools that replay through packages/scoring). */
export function toScoringEvent(event: ProfileEvent, catalog: ReadonlyMap<string, string[]> = new Map()): ScoringEvent {
  return {
    type: event.type,
    target: event.target,
    tags: event.tags.length > 0 ? event.tags : (catalog.get(targetTag(event.target)) ?? []),
    occurredMs: Date.parse(event.occurredAt),
    ...(event.dwellMs !== undefined && { dwellMs: event.dwellMs }),
  };
}
