import { z } from 'zod';
import { personIdSchema } from './fields';

/**
 * A message on profile.lifecycle.v1, version 2: a person's stage or tier changed (docs/model.md §4.3).
 *
 * Version 1 carried `{ userId, from, to, at, reason, transitionId }` with the profile key in
 * `userId` — an anonymousId for people known only anonymously — and stage changes only. Version 2
 * says who the person is: `id` is the profile key (the Kafka key), `userId` is present only for
 * a known user, `anonymousIds` lists every anonymous id merged into the profile (for an anonymous
 * profile, its own). `kind` says what changed: the stage, the value tier or the social tier; a
 * subscriber that wants stages alone keeps `kind === "stage"`. Delivery is at least once, in
 * order per person; `transitionId` is unique per change, so repeats are dropped by it.
 */
/** What a lifecycle transition changes; the CHECK of migration 004 lists the same (its test compares them). */
export const TRANSITION_KINDS = ['stage', 'value_tier', 'social_tier'] as const;
export type TransitionKind = (typeof TRANSITION_KINDS)[number];

export const lifecycleMessageSchema = z.object({
  v: z.literal(2),
  kind: z.enum(TRANSITION_KINDS),
  id: personIdSchema.describe('profile key: the userId, or the anonymousId of a profile not linked to a user'),
  userId: personIdSchema.optional().describe('present only when the profile is a known user'),
  anonymousIds: z.array(personIdSchema).describe('anonymous ids merged into the profile, or its own'),
  from: z.string().nullable().describe('null at a person’s first stage'),
  to: z.string(),
  at: z.iso.datetime(),
  reason: z.enum(['first_seen', 'event', 'merge', 'time', 'reactivation']),
  transitionId: z.string().regex(/^\d+$/),
});
export type LifecycleMessage = z.output<typeof lifecycleMessageSchema>;
