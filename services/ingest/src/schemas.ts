import {
  nativeEventSchema,
  nativeIdentifySchema,
  segmentAliasSchema,
  segmentBatchSchema,
  segmentGroupSchema,
  segmentIdentifySchema,
  segmentPageSchema,
  segmentTrackSchema,
} from './dialects';
import { errorResponse, fieldErrorSchema } from '@pstream/http';
import { z } from 'zod';
import { MAX_BATCH } from './accept';

/**
 * The documented shapes of every route, built from the same zod schemas that validate each
 * event (see routes/): `/openapi.json` is generated from these.
 */
export const rejectionSchema = z
  .object({
    index: z.number().int().describe('position of the item in the request'),
    errors: z.array(fieldErrorSchema),
  })
  .describe('One refused item: where it was in the request and everything wrong with it.');

const ignoredSchema = z.object({ index: z.number().int(), reason: z.string() });

export const acceptedSchema = z
  .object({
    accepted: z.number().int().describe('items accepted and acknowledged by Kafka'),
    rejected: z.array(rejectionSchema),
    ignored: z
      .array(ignoredSchema)
      .optional()
      .describe(
        'accepted Segment calls that mean nothing to a profile (group, a page naming no product, an unmapped event name); present only when there are some',
      ),
  })
  .describe(
    'Every accepted item is on Kafka (acks=all). Invalid items are listed; the valid ones were still accepted.',
  );

const err = errorResponse;
/** Response bodies shared by every tracking route; errors are the one error body of @pstream/http. */
export const trackingResponses = {
  202: acceptedSchema,
  400: err(
    'Malformed body (ING_MALFORMED), or nothing accepted (ING_NOTHING_ACCEPTED: `error.details.rejected` names every problem)',
  ),
  401: err('Missing or unknown write key (ING_UNAUTHORIZED)'),
  403: err(
    'A browser request from an origin the write key does not allow (ING_ORIGIN_NOT_ALLOWED; CORS_ORIGINS, CORS_ORIGINS_BY_KEY)',
  ),
  408: err('The request did not fully arrive within REQUEST_TIMEOUT_MS (ING_REQUEST_TIMEOUT)'),
  413: err(
    'Body over 512 KB after decompression, or every event over 32 KB (ING_TOO_LARGE; `error.details.rejected` then)',
  ),
  415: err('Content-Type not JSON, or Content-Encoding not gzip/deflate (ING_UNSUPPORTED_MEDIA_TYPE)'),
  429: err('Past the write key’s rate (ING_RATE_LIMITED)', {
    'Retry-After': 'seconds until the write key may send again',
  }),
  503: err('Kafka did not acknowledge in time (ING_KAFKA_UNAVAILABLE); nothing in this request was accepted', {
    'Retry-After': 'seconds before Kafka is tried again',
  }),
};
export const writeKeySecurity: { [scheme: string]: string[] }[] = [{ basicAuth: [] }, { writeKey: [] }];

export const eventsBodySchema = z.union([
  nativeEventSchema,
  z.strictObject({ events: z.array(nativeEventSchema).min(1).max(MAX_BATCH) }),
]);
export const identifyBodySchema = z.union([nativeIdentifySchema, segmentIdentifySchema]);
export { segmentAliasSchema, segmentBatchSchema, segmentGroupSchema, segmentPageSchema, segmentTrackSchema };

/** The schemas /openapi.json publishes by name (components.schemas); routes refer to them. */
export const ingestSchemas = {
  NativeEvent: nativeEventSchema,
  NativeIdentify: nativeIdentifySchema,
  SegmentTrack: segmentTrackSchema,
  SegmentIdentify: segmentIdentifySchema,
  SegmentAlias: segmentAliasSchema,
  SegmentPage: segmentPageSchema,
  SegmentGroup: segmentGroupSchema,
  SegmentBatch: segmentBatchSchema,
  Accepted: acceptedSchema,
  Rejection: rejectionSchema,
};
