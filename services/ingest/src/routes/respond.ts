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
 * size was the only problem — when nothing was accepted. Accepted items that became no message
 * are listed as `ignored` (only when there are some, so native clients see the body they always did);
 * `onPublished` runs once the 202 is certain.
 */
export async function publishAndRespond(
  reply: FastifyReply,
  publisher: Publisher,
  sorted: Sorted,
  onPublished?: () => void,
) {
  const { accepted, rejected, ignored } = sorted;
  if (accepted === 0) {
    await reply.server.ingestMetrics?.publish(reply.request.source, sorted);
    return onlyTooLarge(rejected)
      ? sendError(reply, 413, IngestErrors.TOO_LARGE, 'every item is too large', { accepted: 0, rejected })
      : sendError(reply, 400, IngestErrors.NOTHING_ACCEPTED, 'no item was accepted; see details.rejected', {
          accepted: 0,
          rejected,
        });
  }
  // Through the metrics wrapper when the app has one (buildApp decorates it), so every item is
  // counted. Only ignored items (a lone page view naming nothing): nothing to wait for.
  const metrics = reply.server.ingestMetrics;
  if (metrics) await metrics.publish(reply.request.source, sorted);
  else if (sorted.records.length > 0) await publisher.publish(sorted.records);
  onPublished?.();
  return reply.code(202).send({ accepted, rejected, ...(ignored.length > 0 && { ignored }) });
}
