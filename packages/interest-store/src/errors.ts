import { AppError } from '@pstream/platform';

export const InterestStoreErrors = {
  /** An alias chain longer than any merge produces: a loop from two profiles merged into each other. */
  ALIAS_LOOP: 'SCR_ALIAS_LOOP',
} as const;

export function aliasLoop(message: string): AppError {
  return new AppError(InterestStoreErrors.ALIAS_LOOP, message, { retryable: false });
}
