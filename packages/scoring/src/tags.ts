/** The implicit tag every event carries for its own target, e.g. `product:p-778`. */
export function targetTag(target: { type: string; id: string }): string {
  return `${target.type}:${target.id}`;
}

/** The dimension of a tag: the part before the first colon. */
export function tagDimension(tag: string): string {
  const i = tag.indexOf(':');
  return i < 0 ? tag : tag.slice(0, i);
}

/**
 * An event's explicit tags as the model uses them: once each, without the implicit target tag
 * (which the model adds itself, and which is the key of the target's visit and follow records).
 */
export function explicitTags(tags: readonly string[], target: { type: string; id: string }): string[] {
  const implicit = targetTag(target);
  return [...new Set(tags)].filter((t) => t !== implicit);
}
