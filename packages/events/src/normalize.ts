import { randomUUID } from 'node:crypto';
import { MAX_FUTURE_MS, nativeEventSchema } from './envelope';
import type { ProfileEvent } from './message';

/** One reason an input was refused: where (a JSON path such as `tags.3`) and what. */
export type FieldError = { path: string; message: string };

export type Normalized<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

/** Formats zod issues the way our 4xx bodies and DLQ records name them. */
export function fieldErrors(issues: readonly { path: readonly PropertyKey[]; message: string }[]): FieldError[] {
  return issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
}

/**
 * Validates one native envelope and turns it into the message we put on Kafka, or lists
 * everything wrong with it. `now` is the receiving time: the default event time, and the
 * reference for the 24 h future limit.
 */
export function normalizeEvent(input: unknown, options: { source: string; now: number }): Normalized<ProfileEvent> {
  const parsed = nativeEventSchema.safeParse(input);
  if (!parsed.success) return { ok: false, errors: fieldErrors(parsed.error.issues) };
  const e = parsed.data;
  const occurred = e.occurredAt === undefined ? options.now : Date.parse(e.occurredAt);
  if (occurred - options.now > MAX_FUTURE_MS) {
    return { ok: false, errors: [{ path: 'occurredAt', message: 'is more than 24 h in the future' }] };
  }
  const receivedAt = new Date(options.now).toISOString();
  return {
    ok: true,
    value: {
      v: 1,
      kind: 'event',
      eventId: e.eventId ?? randomUUID(),
      source: options.source,
      type: e.type,
      ...(e.userId !== undefined && { userId: e.userId }),
      ...(e.anonymousId !== undefined && { anonymousId: e.anonymousId }),
      profileKey: (e.userId ?? e.anonymousId) as string,
      occurredAt: new Date(occurred).toISOString(),
      receivedAt,
      target: e.target,
      tags: [...new Set(e.tags)],
      ...(e.dwellMs !== undefined && { dwellMs: e.dwellMs }),
      ...(e.amount !== undefined && { amount: e.amount }),
      ...(e.currency !== undefined && { currency: e.currency }),
      ...(e.quantity !== undefined && { quantity: e.quantity }),
      ...(e.context !== undefined && { context: e.context }),
    },
  };
}
