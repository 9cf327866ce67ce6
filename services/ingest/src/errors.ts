import { httpErrors } from '@pstream/http';

/**
 * Error codes of the ingest service (STYLE: one list per package, prefixed): the HTTP layer's
 * own (`ING_MALFORMED`, `ING_NOT_FOUND`, `ING_TOO_LARGE`, … — see @pstream/http) and ingest's.
 * Every one is listed in the README's error table.
 */
export const IngestErrors = {
  ...httpErrors('ING'),
  /** Kafka did not acknowledge in time, or is known to be down: 503, retry later. */
  KAFKA_UNAVAILABLE: 'ING_KAFKA_UNAVAILABLE',
  /** No write key, or one we do not know: 401. */
  UNAUTHORIZED: 'ING_UNAUTHORIZED',
  /** A browser request (or preflight) from an origin no write key / not this write key allows: 403. */
  ORIGIN_NOT_ALLOWED: 'ING_ORIGIN_NOT_ALLOWED',
  /** The write key is past its rate: 429 with Retry-After. */
  RATE_LIMITED: 'ING_RATE_LIMITED',
  /** Every event of the request was invalid: 400, `details.rejected` names every problem. */
  NOTHING_ACCEPTED: 'ING_NOTHING_ACCEPTED',
} as const;
export type IngestErrorCode = (typeof IngestErrors)[keyof typeof IngestErrors];
