/**
 * Typed errors: every error we raise carries a prefixed code from the owning package's list,
 * the cause, and whether retrying the same operation can help (a broker hiccup can; a bad
 * event never will).
 */
export class AppError extends Error {
  readonly code: string;
  readonly retryable: boolean;

  constructor(code: string, message: string, options: { cause?: unknown; retryable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

export const PlatformErrors = {
  CONFIG_INVALID: 'PLT_CONFIG_INVALID',
  MIGRATION_FAILED: 'PLT_MIGRATION_FAILED',
} as const;
