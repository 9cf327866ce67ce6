import { AppError } from '@pstream/platform';

/**
 * Error codes the profile store raises (STYLE: one list per package, prefixed by its owner). None
 * reaches an HTTP answer as such: a service maps it or answers its own 500; they are for logs,
 * DLQ records and the consumers' retry decisions.
 */
export const ProfileStoreErrors = {
  /** Postgres did not come back within the retry deadline; the consumer redelivers the batch. */
  DB_UNAVAILABLE: 'PST_DB_UNAVAILABLE',
} as const;

const TRANSIENT_SQLSTATES = new Set([
  '40001',
  '40P01',
  '57P01',
  '57P02',
  '57P03',
  '53300',
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
]);
const TRANSIENT_NODE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * True for failures a retry of the whole transaction can cure: a deadlock or serialization
 * failure between segmenters, or Postgres restarting / unreachable.
 */
export function isTransient(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | null;
  if (!e) return false;
  if (e.code && (TRANSIENT_SQLSTATES.has(e.code) || TRANSIENT_NODE.has(e.code))) return true;
  return /Connection terminated|connection timeout|Client has encountered a connection error|terminating connection/i.test(
    e.message ?? '',
  );
}

export function dbUnavailable(cause: unknown): AppError {
  return new AppError(ProfileStoreErrors.DB_UNAVAILABLE, 'Postgres unavailable past the retry deadline', {
    cause,
    retryable: true,
  });
}
