/** Error codes of the ingest service (STYLE: one list per package, prefixed). */
export const IngestErrors = {
  /** Kafka did not acknowledge in time, or is known to be down: 503, retry later. */
  KAFKA_UNAVAILABLE: 'ING_KAFKA_UNAVAILABLE',
  /** No write key, or one we do not know: 401. */
  UNAUTHORIZED: 'ING_UNAUTHORIZED',
  /** A browser request (or preflight) from an origin no write key / not this write key allows: 403. */
  ORIGIN_NOT_ALLOWED: 'ING_ORIGIN_NOT_ALLOWED',
  /** The write key is past its rate: 429 with Retry-After. */
  RATE_LIMITED: 'ING_RATE_LIMITED',
  /** Body over 512 KB after decompression, or a single event over 32 KB: 413. */
  TOO_LARGE: 'ING_TOO_LARGE',
  /** Content-Type other than JSON, or a Content-Encoding other than gzip/deflate/identity: 415. */
  UNSUPPORTED_MEDIA_TYPE: 'ING_UNSUPPORTED_MEDIA_TYPE',
  /** Body is not JSON, has a poisoned prototype, or does not have the request's shape: 400. */
  MALFORMED: 'ING_MALFORMED',
  /** Every event of the request was invalid: 400 with the rejected list. */
  NOTHING_ACCEPTED: 'ING_NOTHING_ACCEPTED',
  /** The whole request did not arrive within REQUEST_TIMEOUT_MS: 408. */
  REQUEST_TIMEOUT: 'ING_REQUEST_TIMEOUT',
  /** No such route (ingest has no read routes at all). */
  NOT_FOUND: 'ING_NOT_FOUND',
  /** Any other 4xx. */
  BAD_REQUEST: 'ING_BAD_REQUEST',
  /** A bug: 500 with a fixed body. */
  INTERNAL: 'ING_INTERNAL',
} as const;
export type IngestErrorCode = (typeof IngestErrors)[keyof typeof IngestErrors];
