import { sendError } from '@pstream/http';
import type { FastifyReply } from 'fastify';
import { onlyTooLarge, type Sorted } from '../accept';
import { IngestErrors } from '../errors';
import type { Publisher } from '../publisher';

/** A 400 for a body that does not have the route's shape at all. */
export function malformed(reply: FastifyReply, message: string) {
  return sendError(reply, 400, IngestErrors.MALFORMED, message);
}

/**
 * Publishes what was accepted and answers: 202 only after Kafka acknowledged every accepted
 * message (a Kafka failure throws and becomes a 503 in the error handler); 400 — or 413 when
 * size was the only problem — when nothing was accepted.
 */
export async function publishAndRespond(reply: FastifyReply, publisher: Publisher, sorted: Sorted) {
  const { accepted, rejected, records } = sorted;
  if (accepted === 0) {
    return onlyTooLarge(rejected)
      ? sendError(reply, 413, IngestErrors.TOO_LARGE, 'every item is too large', { accepted: 0, rejected })
      : sendError(reply, 400, IngestErrors.NOTHING_ACCEPTED, 'no item was accepted; see details.rejected', { accepted: 0, rejected });
  }
  await publisher.publish(records);
  return reply.code(202).send({ accepted, rejected });
}
