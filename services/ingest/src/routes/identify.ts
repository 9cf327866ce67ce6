import { mapSegmentIdentify, normalizeIdentify } from '../dialects';
import type { FastifyInstance } from 'fastify';
import { sortItems } from '../accept';
import type { Publisher } from '../publisher';
import { identifyBodySchema } from '../schemas';
import { trackingRoute } from './route-options';
import { wrap } from './events';
import { isObject } from '../json';
import { malformed, publishAndRespond } from './respond';

/** Fields only Segment-style SDK payloads carry; their presence selects the Segment dialect. */
const SEGMENT_MARKERS = ['messageId', 'type', 'timestamp', 'context', 'integrations', '_metadata', 'sentAt'];

/**
 * `POST /v1/identify` speaks both dialects on one path, as SPEC §3.3 gives them the same one:
 * the native body `{ userId, anonymousId?, traits }` (strict), and Segment's identify (its SDKs
 * always send `messageId` and `type`), mapped to the native one.
 */
export function registerIdentifyRoute(app: FastifyInstance, deps: { publisher: Publisher }): void {
  app.post(
    '/v1/identify',
    trackingRoute('identify', ['native', 'segment'], 'Traits of a known user, and the anonymous→known link when both ids are real (native or Segment body)', identifyBodySchema),
    async (request, reply) => {
      const body = request.body;
      if (!isObject(body)) return malformed(reply, 'the body must be an identify object');
      const options = { source: request.source, now: Date.now() };
      const segment = SEGMENT_MARKERS.some((k) => k in body);
      const sorted = sortItems([body], (item) => (segment ? mapSegmentIdentify(item, options) : wrap(normalizeIdentify(item, options))));
      return publishAndRespond(reply, deps.publisher, sorted);
    },
  );
}
