import type { FastifyReply } from 'fastify';
import { onlyTooLarge, type Sorted } from '../accept';
import { IngestErrors } from '../errors';
import type { Publisher } from '../publisher';

/** A 400 for a body that does not have the route's shape at all. */
export function malformed(reply: FastifyReply, message: string) {
  return reply.code(400).send({ error: 'Bad Request', code: IngestErrors.MALFORMED, message });
}

/**
 * Publishes what was accepted and answers: 202 only after Kafka acknowledged every accepted
 * message (a Kafka failure throws and becomes a 503 in the error handler); 400 — or 413 when
 * size was the only problem — when nothing was accepted. Accepted items that became no message
 * are listed as `ignored` (only when there are some, so native clients see the body they always did);
 * `onPublished` runs once the 202 is certain.
 */
export async function publishAndRespond(reply: FastifyReply, publisher: Publisher, sorted: Sorted, onPublished?: () => void) {
  const { accepted, rejected, records, ignored } = sorted;
  if (accepted === 0) {
    return onlyTooLarge(rejected)
      ? reply.code(413).send({ error: 'Payload Too Large', code: IngestErrors.TOO_LARGE, message: 'every item is too large', accepted: 0, rejected })
      : reply.code(400).send({ error: 'Bad Request', code: IngestErrors.NOTHING_ACCEPTED, message: 'no item was accepted; see rejected', accepted: 0, rejected });
  }
  // Only ignored items (a lone page view naming nothing): nothing to wait for.
  if (records.length > 0) await publisher.publish(records);
  onPublished?.();
  return reply.code(202).send({ accepted, rejected, ...(ignored.length > 0 && { ignored }) });
}

export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
