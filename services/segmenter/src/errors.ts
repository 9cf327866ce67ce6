import { httpErrors } from '@pstream/http';
import { classifyFailure, type FailureKind } from '@pstream/platform';
import { isTransient } from '@pstream/profile-store';

/**
 * Error codes of the segmenter (STYLE: one list per package, prefixed): its ops routes' HTTP
 * errors (`SEG_NOT_FOUND`, … — see @pstream/http). What the store it writes through raises is the
 * store's (`PST_…`, @pstream/profile-store).
 */
export const SegmenterErrors = httpErrors('SEG');

/**
 * Poison or transient, for the batch consumer. Postgres refusing the data — class 22 (data
 * exception: bad encoding, out of range), 23 (integrity constraint) and 54 (program limit, e.g.
 * an index row too large) — can never be cured by a retry, so the message is isolated and
 * dead-lettered; connection loss, failover, deadlocks and anything unknown are retried.
 */
export function classifySegmenterFailure(err: unknown): FailureKind {
  if (isTransient(err)) return 'transient';
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^(22|23|54)[0-9A-Z]{3}$/.test(code)) return 'poison';
  return classifyFailure(err);
}
