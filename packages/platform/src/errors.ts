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

/** One problem with an input: where (a JSON path such as `tags.3`; "" for the whole) and what. */
export type FieldError = { path: string; message: string };

type Issue = { readonly path: readonly PropertyKey[]; readonly message: string };

/** zod issues as our 4xx bodies name them; the one formatter of issues (see `describeIssues`). */
export function fieldErrors(issues: readonly Issue[]): FieldError[] {
  return issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
}

/**
 * Every issue on one line (`tags.3: …; userId: …`), `root` naming an empty path: for logs, DLQ records and start-up
 * errors.
 */
export function describeIssues(issues: readonly Issue[], root: string): string {
  return fieldErrors(issues)
    .map((e) => `${e.path || root}: ${e.message}`)
    .join('; ');
}
