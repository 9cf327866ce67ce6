import { mapSegmentAlias, mapSegmentItem, mapSegmentTrack } from '../dialects';
import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import { MAX_BATCH, sortItems } from '../accept';
import type { Publisher } from '../publisher';
import { segmentAliasSchema, segmentBatchSchema, segmentTrackSchema } from '../schemas';
import { trackingRoute } from './route-options';
import { isObject } from '../json';
import { malformed, publishAndRespond } from './respond';

/**
 * Segment-compatible routes (SPEC §3.3), so Segment's and RudderStack's SDKs work by changing
 * their host: `/v1/track`, `/v1/alias` and `/v1/batch` (`/v1/identify` is shared with the native
 * API, see identify.ts). Each call is mapped to native events (../dialects/segment.ts).
 */
export function registerSegmentRoutes(app: FastifyInstance, deps: { publisher: Publisher }): void {
  const common = (operationId: string, summary: string, body: z.ZodType) => trackingRoute(operationId, ['segment'], summary, body);

  app.post('/v1/track', common('segmentTrack', 'Segment track: one event, or one purchase per product of an Order Completed', segmentTrackSchema), async (request, reply) => {
    if (!isObject(request.body)) return malformed(reply, 'the body must be a track object');
    const options = { source: request.source, now: Date.now() };
    return publishAndRespond(reply, deps.publisher, sortItems([request.body], (item) => mapSegmentTrack(item, options)));
  });

  app.post('/v1/alias', common('segmentAlias', 'Segment alias: previousId and userId are one person', segmentAliasSchema), async (request, reply) => {
    if (!isObject(request.body)) return malformed(reply, 'the body must be an alias object');
    const options = { source: request.source, now: Date.now() };
    return publishAndRespond(reply, deps.publisher, sortItems([request.body], (item) => mapSegmentAlias(item, options)));
  });

  app.post('/v1/batch', common('segmentBatch', 'Segment batch: up to 500 track/identify/alias calls', segmentBatchSchema), async (request, reply) => {
    const body = request.body;
    if (!isObject(body) || !Array.isArray(body.batch)) return malformed(reply, 'the body must be { "batch": [...] }');
    if (body.batch.length === 0) return malformed(reply, 'batch is empty');
    if (body.batch.length > MAX_BATCH) return malformed(reply, `at most ${MAX_BATCH} calls per batch, got ${body.batch.length}`);
    const options = { source: request.source, now: Date.now() };
    return publishAndRespond(reply, deps.publisher, sortItems(body.batch, (item) => mapSegmentItem(item, options, body.context)));
  });
}
