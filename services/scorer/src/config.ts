import { consumerEnv, envBoolean, envInt, keyringEnv, parseEnv, sharedEnv } from '@pstream/platform';
import { decayParams, DEFAULT_WEIGHTS, type ScoringParams } from '@pstream/scoring';
import { z } from 'zod';

/** A weight or dwell factor; its default is packages/scoring's (DEFAULT_WEIGHTS), the one place to change it. */
const weight = (fallback: number) => z.coerce.number().min(0).default(fallback);

const schema = z.object({
  ...sharedEnv(
    'KAFKA_BROKERS',
    'EVENTS_TOPIC',
    'DLQ_TOPIC',
    'REDIS_URL',
    'REDIS_CLUSTER_NODES',
    'REDIS_PREFIX',
    'DATABASE_URL',
    'PG_SCHEMA',
    'LOG_LEVEL',
    'DECAY_HALF_LIFE_DAYS',
    'DECAY_LANDMARK',
    'DEDUPE_WINDOW_HOURS',
    'MAX_MERGED_IDS',
  ),
  ...consumerEnv,
  ...keyringEnv,
  /** Port of /healthz, /readyz and /metrics. */
  SCORER_PORT: envInt(8082, 1),
  SCORER_HOST: z.string().default('0.0.0.0'),
  /** Consumer group of the scorers; N instances share the partitions. */
  SCORER_GROUP: z.string().min(1).default('scorer'),
  /**
   * Replicas that must hold a batch's Redis writes before its offsets are committed (Redis WAIT,
   * per master written). 0 trusts the master's answer; 1 on a Cluster with replicas means a
   * master lost right after answering loses no counted event (the scorer waits while no replica
   * is in sync).
   */
  REDIS_WAIT_REPLICAS: envInt(0, 0),
  /**
   * Partitions one scorer takes in hand at the same time (each in order). Their chunks in hand
   * together (one fetch's) are applied in one call: one store round (reads pipelined, then writes
   * pipelined) for all of them, one call at a time. At least the partitions a scorer holds (12 on
   * the default topic) gives one call per fetch.
   */
  SCORER_PARTITIONS_CONCURRENTLY: envInt(12, 1),
  /** Base weight of a visit (docs/model.md §4.1: "doing nothing" scores 1). */
  WEIGHT_VISIT: weight(DEFAULT_WEIGHTS.visitBase),
  /** Added to a visit's behaviour weight per comment. */
  WEIGHT_COMMENT: weight(DEFAULT_WEIGHTS.comment),
  /** Added per like. */
  WEIGHT_LIKE: weight(DEFAULT_WEIGHTS.like),
  /** Added per share. */
  WEIGHT_SHARE: weight(DEFAULT_WEIGHTS.share),
  /** Added per favorite. */
  WEIGHT_FAVORITE: weight(DEFAULT_WEIGHTS.favorite),
  /** Weight of a follow (not a visit). */
  WEIGHT_FOLLOW: weight(DEFAULT_WEIGHTS.follow),
  /** Weight of a purchase (not a visit). */
  WEIGHT_PURCHASE: weight(DEFAULT_WEIGHTS.purchase),
  /** Dwell factor of a visit whose total dwell is below DWELL_SHORT_MS. */
  DWELL_FACTOR_SHORT: weight(DEFAULT_WEIGHTS.dwellShort),
  /** Dwell factor from DWELL_SHORT_MS to DWELL_LONG_MS inclusive, and while no dwell was reported. */
  DWELL_FACTOR_MID: weight(DEFAULT_WEIGHTS.dwellMid),
  /** Dwell factor above DWELL_LONG_MS. */
  DWELL_FACTOR_LONG: weight(DEFAULT_WEIGHTS.dwellLong),
  /** Lower dwell bound in ms (10 s). */
  DWELL_SHORT_MS: envInt(DEFAULT_WEIGHTS.dwellShortMs),
  /** Upper dwell bound in ms (60 s). */
  DWELL_LONG_MS: envInt(DEFAULT_WEIGHTS.dwellLongMs),
  /** An event joins a visit whose last event is less than this many minutes earlier (event time). */
  VISIT_GAP_MINUTES: z.coerce.number().positive().default(30),
  /** Open visits kept per person; beyond it closed ones, then the least recent, are forgotten. */
  MAX_OPEN_VISITS: envInt(100, 1),
  /** Interest tags kept per person; beyond it the lowest-scored tags are dropped (≥ 200, the read limit). */
  MAX_TAGS_PER_PERSON: envInt(1000, 200),
  /**
   * W (docs/model.md §4.1): an event up to this many hours (event time) behind the newest event
   * already applied for its person still takes its place in the time-sorted stream; one further
   * behind is applied on its own. The scorer keeps each person's last W hours of events.
   */
  SCORER_LATENESS_HOURS: z.coerce.number().positive().default(48),
  /**
   * The per-tag index of audiences and /similar in listpack buckets (≈ 38 B an entry instead of
   * ≈ 105 B) for tags written from now on; reads then touch every bucket of a tag (≈ holders ÷ 50),
   * several times slower for tags of many holders (BENCHMARKS.md "The per-tag index in buckets").
   */
  TAG_INDEX_BUCKETS: envBoolean(false),
  /**
   * The layout a tag's per-tag index starts in (a tag keeps the layout it is in; docs/operations.md
   * "Moving the per-tag index into score-range buckets"): `range` (default) — listpack buckets by score
   * range with a directory, ≈ 38 B an entry, reads in score order at a few keys; `set` — one sorted set a
   * tag (≈ 105 B an entry past 128 holders); `hash` — listpack buckets by a hash of the person (as
   * TAG_INDEX_BUCKETS=true; reads touch every bucket). Unset: `hash` with TAG_INDEX_BUCKETS=true, else `range`.
   */
  TAG_INDEX_LAYOUT: z.enum(['range', 'set', 'hash']).optional(),
});

export type ScorerConfig = z.output<typeof schema>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): ScorerConfig {
  return parseEnv(schema, env);
}

/** The §4.1 parameters from the configuration. */
export function scoringParams(c: ScorerConfig): ScoringParams {
  return {
    weights: {
      visitBase: c.WEIGHT_VISIT,
      comment: c.WEIGHT_COMMENT,
      like: c.WEIGHT_LIKE,
      share: c.WEIGHT_SHARE,
      favorite: c.WEIGHT_FAVORITE,
      follow: c.WEIGHT_FOLLOW,
      purchase: c.WEIGHT_PURCHASE,
      dwellShort: c.DWELL_FACTOR_SHORT,
      dwellMid: c.DWELL_FACTOR_MID,
      dwellLong: c.DWELL_FACTOR_LONG,
      dwellShortMs: c.DWELL_SHORT_MS,
      dwellLongMs: c.DWELL_LONG_MS,
    },
    visitGapMs: c.VISIT_GAP_MINUTES * 60_000,
    maxOpenVisits: c.MAX_OPEN_VISITS,
    decay: decayParams(c.DECAY_LANDMARK, c.DECAY_HALF_LIFE_DAYS),
  };
}

/** Everything the interest store needs from the configuration. */
export function storeOptions(c: ScorerConfig) {
  return {
    scoring: scoringParams(c),
    maxTagsPerPerson: c.MAX_TAGS_PER_PERSON,
    latenessMs: c.SCORER_LATENESS_HOURS * 3_600_000,
    dedupeWindowMs: c.DEDUPE_WINDOW_HOURS * 3_600_000,
    waitReplicas: c.REDIS_WAIT_REPLICAS,
    maxMergedIds: c.MAX_MERGED_IDS,
    tagIndexBuckets: c.TAG_INDEX_BUCKETS,
    tagIndexLayout: c.TAG_INDEX_LAYOUT ?? (c.TAG_INDEX_BUCKETS ? ('hash' as const) : ('range' as const)),
  };
}
