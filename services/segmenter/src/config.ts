import { DEFAULT_RULES, MAX_SOCIAL_ACTIVE_COUNT, type LifecycleRules } from '@pstream/lifecycle';
import { RULE_LIMITS } from '@pstream/audiences';
import { consumerEnv, envInt, keyringEnv, envPairs, parseEnv, sharedEnv, storedPositionEnv } from '@pstream/platform';
import { z } from 'zod';

/**
 * A window in days; the defaults of the §4.3 thresholds below are packages/lifecycle's DEFAULT_RULES, the one place to
 * change them.
 */
const days = (fallback: number) => envInt(fallback, 1);

/**
 * The longest window any feature reads from the daily aggregates: audience rules' `did … inLastDays`
 * (at most RULE_LIMITS.maxDays), /similar's 30 days of social activity. Lifecycle rules read
 * people and purchases, which retention never prunes; follower charts read follow_daily (kept).
 */
export const RETENTION_FLOOR_DAYS = Math.max(RULE_LIMITS.maxDays, 30);
const count = (fallback: number) => envInt(fallback, 1);

/** `USD=7.1,EUR=7.8`: base-currency units per unit of each other currency. */
const currencyRates = envPairs({
  format: 'CODE=rate (e.g. USD=7.1)',
  key: z.string().regex(/^[A-Z]{3}$/, 'must be an ISO-4217 code such as USD'),
  value: z.coerce.number().positive('must be a positive number'),
  fallback: '',
});

const schema = z.object({
  ...sharedEnv(
    'KAFKA_BROKERS',
    'EVENTS_TOPIC',
    'DLQ_TOPIC',
    'LIFECYCLE_TOPIC',
    'DATABASE_URL',
    'PG_SCHEMA',
    'BASE_CURRENCY',
    'LOG_LEVEL',
    'DEDUPE_WINDOW_HOURS',
    'MAX_MERGED_IDS',
  ),
  ...consumerEnv,
  ...storedPositionEnv,
  ...keyringEnv,
  // The audience refresh reads interests from Redis (the per-tag index) beside Postgres's facts.
  ...sharedEnv(
    'AUDIENCES_TOPIC',
    'REDIS_URL',
    'REDIS_CLUSTER_NODES',
    'REDIS_PREFIX',
    'DECAY_HALF_LIFE_DAYS',
    'DECAY_LANDMARK',
    'INTEREST_VALUE_SCALE',
  ),
  /** Port of /healthz, /readyz and /metrics. */
  SEGMENTER_PORT: envInt(8083, 1),
  SEGMENTER_HOST: z.string().default('0.0.0.0'),
  /** Consumer group of the segmenters; N instances share the partitions. */
  SEGMENTER_GROUP: z.string().min(1).default('segmenter'),
  /**
   * Partitions one segmenter takes in hand at the same time. Their chunks in hand together — the partition batches
   * of one fetch — are applied in one transaction, one transaction at a time, so this is how many partitions one
   * transaction can gather: at least the partitions a segmenter holds (12 on the default topic) gives one transaction
   * per fetch (docs/operations.md "Throughput and freshness"). 1 applies one partition batch per transaction.
   */
  SEGMENTER_PARTITIONS_CONCURRENTLY: envInt(12, 1),
  /**
   * How often the sweep applies stage and tier changes caused by time passing, then refreshes saved audiences
   * (docs/model.md §4.3, docs/api.md §5.4: 60 s).
   */
  SEGMENTER_SWEEP_INTERVAL_MS: envInt(60_000, 10),
  /** People the sweep re-evaluates per transaction. */
  SEGMENTER_SWEEP_BATCH: envInt(1000, 1),
  /**
   * Saved-audience memberships the sweep re-checks at most per round because their time-driven change is due (the rest
   * next round).
   */
  SEGMENTER_AUDIENCE_DUE_BATCH: envInt(100_000, 1),
  /**
   * How long people named by applied messages stay re-checked against saved audiences (covers the scorer lagging the
   * segmenter); default: two sweep intervals.
   */
  SEGMENTER_AUDIENCE_TOUCH_GRACE_MS: envInt(120_000, 0),
  /** A saved audience is also evaluated whole when its last full evaluation is this old (a safety net; 0: never). */
  SEGMENTER_AUDIENCE_FULL_EVERY_MS: envInt(3_600_000, 0),
  /** How often the lifecycle outbox is drained to Kafka when no batch pokes it. */
  SEGMENTER_OUTBOX_POLL_MS: envInt(1000, 10),
  /**
   * Days of daily activity aggregates kept (the current UTC day and N − 1 before it); older days are
   * pruned. Never below the longest window a feature reads (RETENTION_FLOOR_DAYS).
   */
  RETENTION_DAYS: envInt(RETENTION_FLOOR_DAYS, 1).refine((d) => d >= RETENTION_FLOOR_DAYS, {
    message: `must be at least ${RETENTION_FLOOR_DAYS}: audience rules read up to ${RULE_LIMITS.maxDays} days of daily activity (did … inLastDays), /similar and follower charts 30`,
  }),
  /** Rates into BASE_CURRENCY; a purchase in another currency counts but adds no money (README). */
  CURRENCY_RATES: currencyRates,
  /** §4.3 stages: churned after more than N idle days. */
  LIFECYCLE_CHURNED_DAYS: days(DEFAULT_RULES.churnedAfterDays),
  /** §4.3 stages: at_risk after more than N idle days. */
  LIFECYCLE_AT_RISK_DAYS: days(DEFAULT_RULES.atRiskAfterDays),
  /** §4.3 stages: loyal with at least this many purchases… */
  LIFECYCLE_LOYAL_PURCHASES: count(DEFAULT_RULES.loyalPurchases),
  /** …in this many days. */
  LIFECYCLE_LOYAL_DAYS: days(DEFAULT_RULES.loyalWindowDays),
  /** §4.3 stages: new while the first purchase is within this many days. */
  LIFECYCLE_NEW_DAYS: days(DEFAULT_RULES.newWindowDays),
  /** §4.3 value tier high: at least this many purchases… */
  TIER_VALUE_HIGH_PURCHASES: count(DEFAULT_RULES.valueHighPurchases),
  /** …or at least this much spent (base currency)… */
  TIER_VALUE_HIGH_MONETARY: z.coerce.number().positive().default(DEFAULT_RULES.valueHighMonetary),
  /** value tier medium: at least this many purchases… */
  TIER_VALUE_MEDIUM_PURCHASES: count(DEFAULT_RULES.valueMediumPurchases),
  /** …in this many days (both value tiers). */
  TIER_VALUE_DAYS: days(DEFAULT_RULES.valueWindowDays),
  /** §4.3 social tier active: at least this many likes/comments/shares/favorites (≤ 16)… */
  TIER_SOCIAL_ACTIVE_COUNT: count(DEFAULT_RULES.socialActiveCount).pipe(z.number().max(MAX_SOCIAL_ACTIVE_COUNT)),
  /** …in this many days. */
  TIER_SOCIAL_ACTIVE_DAYS: days(DEFAULT_RULES.socialActiveDays),
  /** social tier potential: at least one in this many days. */
  TIER_SOCIAL_POTENTIAL_DAYS: days(DEFAULT_RULES.socialPotentialDays),
});

export type SegmenterConfig = z.output<typeof schema>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): SegmenterConfig {
  return parseEnv(schema, env);
}

/** The §4.3 thresholds of this deployment. */
export function lifecycleRules(c: SegmenterConfig): LifecycleRules {
  return {
    churnedAfterDays: c.LIFECYCLE_CHURNED_DAYS,
    atRiskAfterDays: c.LIFECYCLE_AT_RISK_DAYS,
    loyalPurchases: c.LIFECYCLE_LOYAL_PURCHASES,
    loyalWindowDays: c.LIFECYCLE_LOYAL_DAYS,
    newWindowDays: c.LIFECYCLE_NEW_DAYS,
    valueHighPurchases: c.TIER_VALUE_HIGH_PURCHASES,
    valueHighMonetary: c.TIER_VALUE_HIGH_MONETARY,
    valueMediumPurchases: c.TIER_VALUE_MEDIUM_PURCHASES,
    valueWindowDays: c.TIER_VALUE_DAYS,
    socialActiveCount: c.TIER_SOCIAL_ACTIVE_COUNT,
    socialActiveDays: c.TIER_SOCIAL_ACTIVE_DAYS,
    socialPotentialDays: c.TIER_SOCIAL_POTENTIAL_DAYS,
  };
}
