import { normalizeIdentify } from '../dialects';
import type { FastifyInstance } from 'fastify';
import { sortItems } from '../accept';
import { identifyBodySchema } from '../schemas';
import { trackingRoute } from './route-options';
import { wrap } from './events';
import { isObject } from '../json';
import { malformed, publishAndRespond } from './respond';
import { respondSegmentIdentify, type SegmentDeps } from './segment';

/** Fields only Segment-style SDK payloads carry; their presence selects the Segment dialect. */
const SEGMENT_MARKERS = [
  'messageId',
  'type',
  'timestamp',
  'context',
  'integrations',
  '_metadata',
  'sentAt',
  'originalTimestamp',
];

/**
 * `POST /v1/identify` speaks both dialects on one path, as docs/events.md §3.3 gives them the same one:
 * the native body `{ userId, anonymousId?, traits }` (strict), and Segment's identify (its SDKs
 * always send `messageId` and `type`), mapped to the native one. `/v1/i` is the same route
 * under the short path analytics.js posts to.
 */
export function registerIdentifyRoute(app: FastifyInstance, deps: SegmentDeps): void {
  for (const path of ['/v1/identify', '/v1/i']) {
    const summary =
      'Traits of a known user, and the anonymous→known link when both ids are real (native or Segment body)';
    app.post(
      path,
      trackingRoute(
        path === '/v1/i' ? 'identifyShort' : 'identify',
        ['native', 'segment'],
        path === '/v1/i' ? `${summary} (analytics.js short path)` : summary,
        identifyBodySchema,
      ),
      async (request, reply) => {
        const body = request.body;
        if (!isObject(body)) return malformed(reply, 'the body must be an identify object');
        if (SEGMENT_MARKERS.some((k) => k in body)) return respondSegmentIdentify(request, reply, deps);
        const options = { source: request.source, now: Date.now() };
        return publishAndRespond(
          reply,
          deps.publisher,
          sortItems([body], (item) => wrap(normalizeIdentify(item, options))),
        );
      },
    );
  }
}
