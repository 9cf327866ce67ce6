import {
  mapSegmentAlias,
  mapSegmentGroup,
  mapSegmentIdentify,
  mapSegmentItem,
  mapSegmentPage,
  mapSegmentTrack,
  type NormalizeOptions,
  type SegmentMapped,
} from '../dialects';
import type { TopicMessage } from '@pstream/events';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { MAX_BATCH, sortItems, type Sorted } from '../accept';
import type { Publisher } from '../publisher';
import {
  segmentAliasSchema,
  segmentBatchSchema,
  segmentGroupSchema,
  segmentPageSchema,
  segmentTrackSchema,
} from '../schemas';
import type { SegmentCounters } from '../segment-counters';
import { correctSkew } from '../skew';
import { trackingRoute } from './route-options';
import { isObject } from '../json';
import { malformed, publishAndRespond } from './respond';

export type SegmentDeps = { publisher: Publisher; counters: SegmentCounters };
type Mapper = (item: unknown, options: NormalizeOptions, sharedContext?: unknown) => SegmentMapped<TopicMessage>;

/** One call or a batch of them → skew-corrected, mapped, published, answered; then counted. */
async function respond(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: SegmentDeps,
  items: unknown[],
  map: Mapper,
  typeOf: (item: unknown) => string,
  batch?: Record<string, unknown>,
) {
  const now = Date.now();
  const options = { source: request.source, now };
  const sorted = sortItems(items, (item) => {
    const skewed = correctSkew(item, batch?.sentAt, now);
    return skewed.ok ? map(skewed.value, options, batch?.context) : skewed;
  });
  return publishAndRespond(reply, deps.publisher, sorted, () =>
    count(deps.counters, request.source, items, sorted, typeOf),
  );
}

const text = (v: unknown) => (typeof v === 'string' ? v : '');

/** Ignored calls by type and name; page/screen calls that became clicks. */
function count(
  counters: SegmentCounters,
  source: string,
  items: unknown[],
  sorted: Sorted,
  typeOf: (item: unknown) => string,
): void {
  const ignored = new Set(sorted.ignored.map((i) => i.index));
  const rejected = new Set(sorted.rejected.map((r) => r.index));
  items.forEach((item, index) => {
    if (rejected.has(index)) return;
    const type = typeOf(item);
    const call = isObject(item) ? item : {};
    if (ignored.has(index)) counters.ignored(source, type, text(type === 'track' ? call.event : call.name));
    else if (type === 'page' || type === 'screen') counters.mapped(source, type);
  });
}

/** The Segment `/v1/identify` handler, for identify.ts (which shares the path with the native dialect). */
export function respondSegmentIdentify(request: FastifyRequest, reply: FastifyReply, deps: SegmentDeps) {
  return respond(
    request,
    reply,
    deps,
    [request.body],
    (item, options) => mapSegmentIdentify(item, options),
    () => 'identify',
  );
}

/**
 * Segment-compatible routes (docs/events.md §3.3), so Segment's and RudderStack's SDKs work by changing
 * their host: `/v1/track`, `/v1/alias`, `/v1/page`, `/v1/screen`, `/v1/group` and `/v1/batch`
 * (`/v1/identify` is shared with the native API, see identify.ts), each also under the short path
 * analytics.js posts to (`/v1/t`, `/v1/a`, `/v1/p`, `/v1/s`, `/v1/g`, `/v1/b`). Each call is
 * mapped to native events (../dialects/segment.ts); calls that mean nothing to a profile
 * are accepted and ignored, so no SDK retries them.
 */
export function registerSegmentRoutes(app: FastifyInstance, deps: SegmentDeps): void {
  const single = (type: string, paths: string[], summary: string, body: z.ZodType, map: Mapper) => {
    for (const path of paths) {
      const operationId = `segment${type[0]!.toUpperCase()}${type.slice(1)}${path.length <= 5 ? 'Short' : ''}`;
      app.post(
        path,
        trackingRoute(
          operationId,
          ['segment'],
          path.length <= 5 ? `${summary} (analytics.js short path)` : summary,
          body,
        ),
        async (request, reply) => {
          if (!isObject(request.body)) return malformed(reply, `the body must be a ${type} object`);
          return respond(request, reply, deps, [request.body], map, () => type);
        },
      );
    }
  };
  single(
    'track',
    ['/v1/track', '/v1/t'],
    'Segment track: one event, one purchase per product of an Order Completed, or ignored when its name maps to nothing',
    segmentTrackSchema,
    mapSegmentTrack,
  );
  single(
    'alias',
    ['/v1/alias', '/v1/a'],
    'Segment alias: previousId and userId are one person',
    segmentAliasSchema,
    (item, options) => mapSegmentAlias(item, options),
  );
  single(
    'page',
    ['/v1/page', '/v1/p'],
    'Segment page: a click when properties name a product, content or target; else ignored',
    segmentPageSchema,
    (item, options, ctx) => mapSegmentPage('page', item, options, ctx),
  );
  single(
    'screen',
    ['/v1/screen', '/v1/s'],
    'Segment screen: a click when properties name a product, content or target; else ignored',
    segmentPageSchema,
    (item, options, ctx) => mapSegmentPage('screen', item, options, ctx),
  );
  single('group', ['/v1/group', '/v1/g'], 'Segment group: accepted and ignored', segmentGroupSchema, (item) =>
    mapSegmentGroup(item),
  );

  for (const path of ['/v1/batch', '/v1/b']) {
    const summary = 'Segment batch: up to 500 track/identify/alias/page/screen/group calls';
    app.post(
      path,
      trackingRoute(
        path === '/v1/b' ? 'segmentBatchShort' : 'segmentBatch',
        ['segment'],
        path === '/v1/b' ? `${summary} (analytics.js short path)` : summary,
        segmentBatchSchema,
      ),
      async (request, reply) => {
        const body = request.body;
        if (!isObject(body) || !Array.isArray(body.batch))
          return malformed(reply, 'the body must be { "batch": [...] }');
        if (body.batch.length === 0) return malformed(reply, 'batch is empty');
        if (body.batch.length > MAX_BATCH)
          return malformed(reply, `at most ${MAX_BATCH} calls per batch, got ${body.batch.length}`);
        return respond(
          request,
          reply,
          deps,
          body.batch,
          mapSegmentItem,
          (item) => text(isObject(item) ? item.type : undefined),
          body,
        );
      },
    );
  }
}
