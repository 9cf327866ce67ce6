import { AppError } from '@pstream/platform';

/**
 * Error codes the interest store raises (STYLE: one list per package, prefixed by its owner, not by
 * the service that calls it). None reaches an HTTP answer as such; they are for logs, DLQ records
 * and the consumers' retry decisions.
 */
export const InterestStoreErrors = {
  /** An alias chain longer than any merge produces: a loop from two profiles merged into each other. */
  ALIAS_LOOP: 'IST_ALIAS_LOOP',
  /** A person's stored state cannot be decoded (poison; `pnpm scorer:rebuild` repairs it). */
  BAD_STATE: 'IST_BAD_STATE',
  /** A guarded write kept being refused because another writer changed the person each time (retried). */
  CONTENTION: 'IST_CONTENTION',
} as const;

export function aliasLoop(message: string): AppError {
  return new AppError(InterestStoreErrors.ALIAS_LOOP, message, { retryable: false });
}
