/**
 * The rule language lives in @pstream/audience-rules, below the stores, so the profile store's leaf
 * compiler takes its leaf types from the same schema; this package re-exports it for its callers.
 */
export * from '@pstream/audience-rules';
