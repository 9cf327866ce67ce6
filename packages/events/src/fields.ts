import { z } from 'zod';

/** The field rules the topic messages share with the envelopes clients post (ingest's dialects). */

/** The event types of docs/events.md §3.1. */
export const EVENT_TYPES = ['follow', 'unfollow', 'click', 'dwell', 'like', 'comment', 'share', 'favorite', 'purchase'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

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
  .regex(
    TAG_PATTERN,
    'must be "dimension:value": dimension [a-z][a-z0-9_]{0,31}, value 1-64 printable characters',
  );
export const targetSchema = z.strictObject({
  type: z.enum(TARGET_TYPES),
  id: z.string().min(1, 'must not be empty').max(128, 'must be at most 128 characters'),
});
export const contextSchema = z.looseObject({
  channel: z.enum(CHANNELS).optional(),
  device: z.record(z.string(), z.unknown()).optional(),
  geo: z
    .looseObject({ country: z.string().max(64).optional(), region: z.string().max(64).optional(), city: z.string().max(64).optional() })
    .optional(),
});
