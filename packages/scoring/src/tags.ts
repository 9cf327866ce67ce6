import type { ProfileEvent } from '@pstream/events';

/** The implicit tag every event carries for its own target, e.g. `product:p-778`. */
export function targetTag(target: ProfileEvent['target']): string {
  return `${target.type}:${target.id}`;
}

/** The dimension of a tag: the part before the first colon. */
export function tagDimension(tag: string): string {
  const i = tag.indexOf(':');
  return i < 0 ? tag : tag.slice(0, i);
}

/** The tags an event's weight goes to: its own tags plus the implicit target tag, once each. */
export function eventTags(event: Pick<ProfileEvent, 'tags' | 'target'>): string[] {
  return [...new Set([...event.tags, targetTag(event.target)])];
}
