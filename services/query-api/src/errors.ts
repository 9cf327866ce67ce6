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
  /** `/ops/lag`: no lag sample taken yet, or lag sampling is not running: 503. */
  LAG_UNAVAILABLE: 'QRY_LAG_UNAVAILABLE',
} as const;
