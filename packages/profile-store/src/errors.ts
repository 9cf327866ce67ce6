import { AppError, classifyFailure, type FailureKind } from '@pstream/platform';

export const SegmenterErrors = {
  /** Postgres did not come back within the retry deadline; the consumer redelivers the batch. */
  DB_UNAVAILABLE: 'SEG_DB_UNAVAILABLE',
} as const;

const TRANSIENT_SQLSTATES = new Set(['40001', '40P01', '57P01', '57P02', '57P03', '53300', '08000', '08001', '08003', '08004', '08006']);
const TRANSIENT_NODE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * True for failures a retry of the whole transaction can cure: a deadlock or serialization
 * failure between segmenters, or Postgres restarting / unreachable.
 */
export function isTransient(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | null;
  if (!e) return false;
  if (e.code && (TRANSIENT_SQLSTATES.has(e.code) || TRANSIENT_NODE.has(e.code))) return true;
  return /Connection terminated|connection timeout|Client has encountered a connection error|terminating connection/i.test(e.message ?? '');
}

export function dbUnavailable(cause: unknown): AppError {
  return new AppError(SegmenterErrors.DB_UNAVAILABLE, 'Postgres unavailable past the retry deadline', { cause, retryable: true });
}

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
