import { z } from 'zod';
import {
  contextSchema,
  EVENT_TYPES,
  eventIdSchema,
  orderIdSchema,
  personIdSchema,
  tagSchema,
  targetSchema,
} from './fields';
import { findUnstorable } from './storable';

/** The time format of `occurredAt` and `receivedAt`: UTC ("Z"), any number of fractional digits. */
export const messageTimeSchema = z.iso.datetime();

/**
 * What travels on profile.events.v1: an accepted event, normalized — its id is set, its time is
 * UTC with milliseconds, the receiving time and source are stamped, and `profileKey` (userId,
 * else anonymousId) is the Kafka key that keeps one person's events in order on one partition.
 * Consumers validate every message with `topicMessageSchema.safeParse` at their boundary.
 */
export const profileEventSchema = z.object({
  v: z.literal(1),
  kind: z.literal('event'),
  eventId: eventIdSchema,
  source: z.string().min(1),
  type: z.enum(EVENT_TYPES),
  userId: personIdSchema.optional(),
  anonymousId: personIdSchema.optional(),
  profileKey: personIdSchema,
  occurredAt: messageTimeSchema,
  receivedAt: messageTimeSchema,
  target: targetSchema,
  tags: z.array(tagSchema),
  dwellMs: z.number().int().min(0).optional(),
  amount: z.number().min(0).optional(),
  currency: z.string().optional(),
  quantity: z.number().int().min(1).optional(),
  /** Purchases only: line items of one order share it and count as one purchase (§4.2). */
  orderId: orderIdSchema.optional(),
  context: contextSchema.optional(),
});
export type ProfileEvent = z.output<typeof profileEventSchema>;

/** A trait's value: a small scalar (docs/events.md §3.2); ingest checks well-known traits more closely. */
export const traitValueSchema = z.union([z.string().max(256), z.number(), z.boolean(), z.null()], {
  error: 'must be a string of at most 256 characters, a number, a boolean or null',
});

export const identifyMessageSchema = z.object({
  v: z.literal(1),
  kind: z.literal('identify'),
  eventId: eventIdSchema,
  source: z.string().min(1),
  userId: personIdSchema,
  anonymousId: personIdSchema.optional(),
  profileKey: personIdSchema,
  occurredAt: messageTimeSchema,
  receivedAt: messageTimeSchema,
  traits: z.record(z.string(), traitValueSchema),
});
export type IdentifyMessage = z.output<typeof identifyMessageSchema>;

/**
 * Segment-style alias: `previousId` (an anonymousId or an older userId) is the same person as
 * `userId`. Like identify with both ids, it merges the two profiles (docs/model.md §4.4). Keyed by userId.
 */
export const aliasMessageSchema = z.object({
  v: z.literal(1),
  kind: z.literal('alias'),
  eventId: eventIdSchema,
  source: z.string().min(1),
  userId: personIdSchema,
  previousId: personIdSchema,
  profileKey: personIdSchema,
  occurredAt: messageTimeSchema,
  receivedAt: messageTimeSchema,
});
export type AliasMessage = z.output<typeof aliasMessageSchema>;

/**
 * The topic's contract, and the one check both consumers apply at their boundary: besides the
 * shape, every string must be storable in every store (storable.ts), so a message is either
 * applied by the scorer and the segmenter alike or dead-lettered by both.
 */
export const topicMessageSchema = z
  .discriminatedUnion('kind', [profileEventSchema, identifyMessageSchema, aliasMessageSchema])
  .superRefine((m, ctx) => {
    const bad = findUnstorable(m);
    if (bad) ctx.addIssue({ code: 'custom', path: bad.path === '' ? [] : bad.path.split('.'), message: bad.message });
  });
export type TopicMessage = z.output<typeof topicMessageSchema>;

/**
 * The one dedupe rule both stores apply (README "Counted once"): an event is a duplicate when an
 * earlier message had the same source, the same eventId AND the same profileKey. The profile key
 * is part of it because the scorer can only look for "seen" records along one person's keys
 * (Redis Cluster: one person, one slot), so the same id sent for another person is a different
 * event in both stores; a retry under the same key after a merge is still found (the scorer
 * follows the alias, the segmenter's record is global). Two messages with the same key but
 * different content: the first one wins, in both.
 *
 * `eventId` never contains `@` (§3.2 syntax), so the text is unambiguous.
 */
export function dedupeId(m: { eventId: string; profileKey: string }): string {
  return `${m.eventId}@${m.profileKey}`;
}
