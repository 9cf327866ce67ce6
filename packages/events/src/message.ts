import { z } from 'zod';
import { contextSchema, EVENT_TYPES, eventIdSchema, orderIdSchema, personIdSchema, tagSchema, targetSchema } from './fields';

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
  occurredAt: z.iso.datetime(),
  receivedAt: z.iso.datetime(),
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

/** A trait's value: a small scalar (SPEC §3.2); ingest checks well-known traits more closely. */
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
  occurredAt: z.iso.datetime(),
  receivedAt: z.iso.datetime(),
  traits: z.record(z.string(), traitValueSchema),
});
export type IdentifyMessage = z.output<typeof identifyMessageSchema>;

/**
 * Segment-style alias: `previousId` (an anonymousId or an older userId) is the same person as
 * `userId`. Like identify with both ids, it merges the two profiles (SPEC §4.4). Keyed by userId.
 */
export const aliasMessageSchema = z.object({
  v: z.literal(1),
  kind: z.literal('alias'),
  eventId: eventIdSchema,
  source: z.string().min(1),
  userId: personIdSchema,
  previousId: personIdSchema,
  profileKey: personIdSchema,
  occurredAt: z.iso.datetime(),
  receivedAt: z.iso.datetime(),
});
export type AliasMessage = z.output<typeof aliasMessageSchema>;

export const topicMessageSchema = z.discriminatedUnion('kind', [profileEventSchema, identifyMessageSchema, aliasMessageSchema]);
export type TopicMessage = z.output<typeof topicMessageSchema>;
