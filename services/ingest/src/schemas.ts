import { nativeEventSchema, nativeIdentifySchema, segmentAliasSchema, segmentBatchSchema, segmentGroupSchema, segmentIdentifySchema, segmentPageSchema, segmentTrackSchema } from '@pstream/events';
import { z } from 'zod';
import { MAX_BATCH } from './accept';
import { IngestErrors } from './errors';

/**
 * The documented shapes of every route, built from the same zod schemas that validate each
 * event (see routes/): `/openapi.json` is generated from these.
 */
const fieldError = z.object({ path: z.string().describe('JSON path in the item, e.g. "tags.3"; "" for the whole item'), message: z.string() });
export const rejectionSchema = z.object({ index: z.number().int().describe('position of the item in the request'), errors: z.array(fieldError) });

const ignoredSchema = z.object({ index: z.number().int(), reason: z.string() });

export const acceptedSchema = z
  .object({
    accepted: z.number().int().describe('items accepted and acknowledged by Kafka'),
    rejected: z.array(rejectionSchema),
    ignored: z.array(ignoredSchema).optional().describe('accepted Segment calls that mean nothing to a profile (group, a page naming no product, an unmapped event name); present only when there are some'),
  })
  .describe('Every accepted item is on Kafka (acks=all). Invalid items are listed; the valid ones were still accepted.');

export const errorSchema = z.object({
  error: z.string().describe('HTTP reason phrase'),
  code: z.enum(Object.values(IngestErrors) as [string, ...string[]]),
  message: z.string(),
  accepted: z.literal(0).optional(),
  rejected: z.array(rejectionSchema).optional().describe('present when items were read but none was accepted'),
});

const err = (what: string) => errorSchema.describe(what);
/** Response bodies shared by every tracking route. */
export const trackingResponses = {
  202: acceptedSchema,
  400: err('Malformed body, or nothing accepted (then `rejected` names every problem)'),
  401: err('Missing or unknown write key'),
  403: err('A browser request from an origin the write key does not allow (CORS_ORIGINS, CORS_ORIGINS_BY_KEY)'),
  408: err('The request did not fully arrive within REQUEST_TIMEOUT_MS'),
  413: err('Body over 512 KB after decompression, or a single event over 32 KB'),
  415: err('Content-Type not JSON, or Content-Encoding not gzip/deflate'),
  429: err('Past the write key’s rate; see the Retry-After header'),
  503: err('Kafka did not acknowledge in time; nothing in this request was accepted; see the Retry-After header'),
};
export const writeKeySecurity: { [scheme: string]: string[] }[] = [{ basicAuth: [] }, { writeKey: [] }];

export const eventsBodySchema = z.union([
  nativeEventSchema,
  z.strictObject({ events: z.array(nativeEventSchema).min(1).max(MAX_BATCH) }),
]);
export const identifyBodySchema = z.union([nativeIdentifySchema, segmentIdentifySchema]);
export { segmentAliasSchema, segmentBatchSchema, segmentGroupSchema, segmentPageSchema, segmentTrackSchema };
