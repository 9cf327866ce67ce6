import type { ProfileEvent } from '@pstream/events';
import type { InterestDelta } from '@pstream/interest-store';
import { eventTags, forwardWeight, singleEventWeight, type DecayParams } from '@pstream/scoring';

/**
 * Turns a validated event into its Redis delta: the event's weight, forward-decayed from its
 * occurrence time, on each of its tags and its implicit target tag. Events of weight 0 give none.
 */
export function toDelta(event: ProfileEvent, decay: DecayParams): InterestDelta | undefined {
  const weight = singleEventWeight(event.type, event.dwellMs);
  const increments = new Map<string, number>();
  if (weight !== 0) {
    const inc = forwardWeight(weight, Date.parse(event.occurredAt), decay);
    for (const tag of eventTags(event)) increments.set(tag, inc);
  }
  return {
    profileKey: event.profileKey,
    source: event.source,
    eventId: event.eventId,
    receivedMs: Date.parse(event.receivedAt),
    increments,
  };
}
