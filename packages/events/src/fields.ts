import { z } from 'zod';

/** The field rules the topic messages share with the envelopes clients post (ingest's dialects). */

/** One day in milliseconds: the unit of every window, half-life and retention in days. */
export const DAY_MS = 86_400_000;

/**
 * What an event type does in the profile model (docs/model.md §4.1, §4.3): `visit` opens or joins a
 * visit of its target (click), `dwell` adds time to one, `social` is a visit action that also counts
 * for the social tier, `follow`/`unfollow` add and take back a follow, `purchase` is a line item.
 */
export type EventRole = 'visit' | 'dwell' | 'social' | 'follow' | 'unfollow' | 'purchase';

/**
 * The event types of docs/events.md §3.1 with their roles: the one list a new type is added to. The
 * scoring model, the facts' fold, the social-tier SQL and the Segment dialect derive from it or are
 * typed by it, so a type nobody handles fails to compile, and test/event-types.test.ts runs each
 * type through every consumer.
 */
export const EVENT_ROLES = {
  follow: 'follow',
  unfollow: 'unfollow',
  click: 'visit',
  dwell: 'dwell',
  like: 'social',
  comment: 'social',
  share: 'social',
  favorite: 'social',
  purchase: 'purchase',
} as const satisfies Record<string, EventRole>;
export type EventType = keyof typeof EVENT_ROLES;
/** The event types, in EVENT_ROLES's order (the order the OpenAPI enum shows). */
export const EVENT_TYPES = Object.keys(EVENT_ROLES) as [EventType, ...EventType[]];

/** The social interactions: visit actions of §4.1 and what the social tier of §4.3 counts. */
export type SocialAction = { [T in EventType]: (typeof EVENT_ROLES)[T] extends 'social' ? T : never }[EventType];
export function isSocialAction(type: string): type is SocialAction {
  return (EVENT_ROLES as Record<string, EventRole>)[type] === 'social';
}
export const SOCIAL_ACTIONS: readonly SocialAction[] = EVENT_TYPES.filter(isSocialAction);

export const TARGET_TYPES = ['shop', 'product', 'creator', 'content'] as const;
export type TargetType = (typeof TARGET_TYPES)[number];

export const CHANNELS = ['search', 'homepage', 'weitao', 'live', 'external', 'campaign'] as const;

/** What an eventId may be (also ingest's fast path: dialects/fast-native.ts). */
export const EVENT_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
export const eventIdSchema = z.string().regex(EVENT_ID_PATTERN, 'must be 1-128 characters of A-Z a-z 0-9 . _ : -');
/**
 * The order a purchase belongs to (docs/events.md §3.1): line items sharing one are one purchase in the
 * facts and lifecycle (§4.2), while each still weighs on its own product's interests (§4.1).
 */
export const orderIdSchema = z.string().min(1, 'must not be empty').max(128, 'must be at most 128 characters');
export const personIdSchema = z.string().min(1, 'must not be empty').max(128, 'must be at most 128 characters');
/** `dimension:value` — dimension `[a-z][a-z0-9_]{0,31}`, value 1-64 printable characters. */
export const TAG_PATTERN = /^[a-z][a-z0-9_]{0,31}:[^\p{C}]{1,64}$/u;
export const tagSchema = z
  .string()
  .regex(TAG_PATTERN, 'must be "dimension:value": dimension [a-z][a-z0-9_]{0,31}, value 1-64 printable characters');
export const targetSchema = z.strictObject({
  type: z.enum(TARGET_TYPES),
  id: z.string().min(1, 'must not be empty').max(128, 'must be at most 128 characters'),
});
export const contextSchema = z.looseObject({
  channel: z.enum(CHANNELS).optional(),
  device: z.record(z.string(), z.unknown()).optional(),
  geo: z
    .looseObject({
      country: z.string().max(64).optional(),
      region: z.string().max(64).optional(),
      city: z.string().max(64).optional(),
    })
    .optional(),
});
