import { httpErrors } from '@pstream/http';

/**
 * Error codes of the query API (STYLE: one list per package, prefixed): the HTTP layer's own
 * (`QRY_INVALID_REQUEST`, `QRY_NOT_FOUND`, … — see @pstream/http) and the query API's. Every one
 * is listed in the README.
 */
export const QueryErrors = {
  ...httpErrors('QRY'),
  /** No bearer token, or one not in API_TOKENS: 401 with `WWW-Authenticate: Bearer`. */
  UNAUTHORIZED: 'QRY_UNAUTHORIZED',
  /** The token lacks the route's scope: 403. */
  FORBIDDEN: 'QRY_FORBIDDEN',
  /** No profile for the id (unknown to Postgres): 404. */
  PROFILE_NOT_FOUND: 'QRY_PROFILE_NOT_FOUND',
  /** No saved audience with the id: 404. */
  AUDIENCE_NOT_FOUND: 'QRY_AUDIENCE_NOT_FOUND',
  /** PREVIEW_CONCURRENCY rule evaluations (previews, new audiences) are already running: 429 with Retry-After. */
  AUDIENCES_BUSY: 'QRY_AUDIENCES_BUSY',
  /** A rule evaluation's statement ran past PREVIEW_STATEMENT_TIMEOUT_MS and Postgres cancelled it: 503. */
  RULE_TOO_COSTLY: 'QRY_RULE_TOO_COSTLY',
  /** A members cursor this API did not give out: 400. */
  INVALID_CURSOR: 'QRY_INVALID_CURSOR',
  /** No catalog entry for the target: 404. */
  CATALOG_NOT_FOUND: 'QRY_CATALOG_NOT_FOUND',
  /** No erasure with this id: 404. */
  ERASURE_NOT_FOUND: 'QRY_ERASURE_NOT_FOUND',
  /** `/ops/lag`: no lag sample taken yet, or lag sampling is not running: 503. */
  LAG_UNAVAILABLE: 'QRY_LAG_UNAVAILABLE',
} as const;
