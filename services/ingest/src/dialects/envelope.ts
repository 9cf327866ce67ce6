import {
  contextSchema,
  EVENT_TYPES,
  eventIdSchema,
  orderIdSchema,
  personIdSchema,
  tagSchema,
  targetSchema,
} from '@pstream/events';
import { z } from 'zod';
import { traitsSchema } from './traits';

export const MAX_TAGS = 32;
/** How far in the future an event time may lie before it is refused (clock skew allowance). */
export const MAX_FUTURE_MS = 24 * 60 * 60 * 1000;
/**
 * Event times before this are refused (1970-01-01T00:00:00Z): every store holds every time from
 * here on (Postgres has no year 0; a 202 for a time one store refuses would lose the event there).
 */
export const EARLIEST_EVENT_TIME = Date.UTC(1970, 0, 1);

/**
 * An optional person id where `null` or "" mean "absent" (SDKs send `userId: null` before they
 * know the user), so `{ userId: null, anonymousId: "a-1" }` is an anonymous event in every endpoint.
 */
export const optionalPersonIdSchema = z
  .preprocess((v) => (v === null || v === '' ? undefined : v), personIdSchema.optional())
  .describe('null or "" count as absent');

/**
 * The native envelope of docs/events.md §3.2 as a client posts it. Unknown fields are refused so a typo
 * ("dwel_ms") is reported instead of silently ignored. Rules that span fields (which type needs
 * which field, the future-time limit) are checked in `normalizeEvent`.
 */
/** An event time as clients send it (every envelope's `occurredAt`). */
export const occurredAtSchema = z.iso.datetime({
  offset: true,
  message: 'must be an ISO-8601 date-time with a time zone',
});
export const CURRENCY_PATTERN = /^[A-Z]{3}$/;

export const nativeEventSchema = z
  .strictObject({
    eventId: eventIdSchema.optional(),
    type: z.enum(EVENT_TYPES),
    userId: optionalPersonIdSchema,
    anonymousId: optionalPersonIdSchema,
    occurredAt: occurredAtSchema.optional(),
    target: targetSchema,
    tags: z.array(tagSchema).max(MAX_TAGS, `at most ${MAX_TAGS} tags`).default([]),
    dwellMs: z.number().int('must be a whole number of milliseconds').min(0).max(86_400_000).optional(),
    amount: z.number().min(0).max(1e12).optional(),
    currency: z.string().regex(CURRENCY_PATTERN, 'must be an ISO-4217 code such as CNY').optional(),
    quantity: z.number().int().min(1).max(1_000_000).optional(),
    orderId: orderIdSchema
      .optional()
      .describe('purchase only: line items sharing it are one order, counted as one purchase (§4.2)'),
    context: contextSchema.optional(),
  })
  .superRefine((e, ctx) => {
    if (e.userId === undefined && e.anonymousId === undefined) {
      ctx.addIssue({ code: 'custom', path: ['userId'], message: 'userId or anonymousId is required' });
    }
    if (e.type === 'dwell' && e.dwellMs === undefined) {
      ctx.addIssue({ code: 'custom', path: ['dwellMs'], message: 'is required for dwell events' });
    }
    if (e.type !== 'dwell' && e.dwellMs !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['dwellMs'], message: 'is only allowed on dwell events' });
    }
    if (e.type === 'purchase') {
      if (e.amount === undefined)
        ctx.addIssue({ code: 'custom', path: ['amount'], message: 'is required for purchase events' });
      if (e.currency === undefined)
        ctx.addIssue({ code: 'custom', path: ['currency'], message: 'is required for purchase events' });
    } else {
      for (const field of ['amount', 'currency', 'quantity', 'orderId'] as const) {
        if (e[field] !== undefined)
          ctx.addIssue({ code: 'custom', path: [field], message: 'is only allowed on purchase events' });
      }
    }
  });
export type NativeEvent = z.output<typeof nativeEventSchema>;

/**
 * Native identify (docs/events.md §3.2): traits for a known user, and — when `anonymousId` is present and
 * real — the anonymous→known link of §4.4. Placeholder ids are handled in `normalizeIdentify`.
 */
export const nativeIdentifySchema = z.strictObject({
  eventId: eventIdSchema.optional(),
  userId: personIdSchema,
  anonymousId: optionalPersonIdSchema,
  occurredAt: z.iso.datetime({ offset: true, message: 'must be an ISO-8601 date-time with a time zone' }).optional(),
  traits: traitsSchema.default({}),
});
export type NativeIdentify = z.output<typeof nativeIdentifySchema>;

/** Alias (Segment's `previousId` → `userId`): the two ids are one person (§4.4). */
export const nativeAliasSchema = z.strictObject({
  eventId: eventIdSchema.optional(),
  userId: personIdSchema,
  previousId: personIdSchema,
  occurredAt: z.iso.datetime({ offset: true, message: 'must be an ISO-8601 date-time with a time zone' }).optional(),
});
export type NativeAlias = z.output<typeof nativeAliasSchema>;
