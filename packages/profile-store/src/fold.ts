import { dedupeId, SOCIAL_ACTIONS, type ProfileEvent } from '@pstream/events';
import { MAX_SOCIAL_ACTIVE_COUNT } from '@pstream/lifecycle';

/** The interactions of the social tier (docs/model.md §4.3): the social actions of packages/events. */
export const SOCIAL_TYPES: ReadonlySet<string> = new Set(SOCIAL_ACTIONS);
/**
 * The same set as an SQL list, `'like', 'comment', …`, for statements that count social
 * interactions in the aggregates. Written from the constant (names of the event contract, plain
 * lowercase words; checked here so a quote can never slip into SQL).
 */
export const SOCIAL_TYPES_SQL = SOCIAL_ACTIONS.map((type) => {
  if (!/^[a-z_]+$/.test(type)) throw new Error(`event type ${type} cannot be written into SQL`);
  return `'${type}'`;
}).join(', ');

/**
 * Joins a row's tags in `activity.tags` (migration 070): U+001F, which no tag holds (TAG_PATTERN of
 * @pstream/events admits no control character).
 */
export const TAG_SEPARATOR = '\u001f';
/** The tag list of an `activity` row in SQL. */
export const TAG_LIST_SQL = "string_to_array(tags, E'\\x1f')";
/**
 * The row's tags each prefixed by its type and U+001F, in SQL: the very expression the GIN index
 * `activity_by_tag` is on (migration 070), so `@> ARRAY[type || E'\x1f' || tag]` is answered by it.
 */
export const TYPED_TAGS_SQL =
  "string_to_array(type || E'\\x1f' || replace(tags, E'\\x1f', E'\\x1e' || type || E'\\x1f'), E'\\x1e')";

/** Converts an amount into the base currency; undefined when no rate is configured. */
export type Converter = (amount: number, currency: string) => number | undefined;

export function createConverter(base: string, rates: ReadonlyMap<string, number>): Converter {
  return (amount, currency) => {
    if (currency === base) return amount;
    const rate = rates.get(currency);
    return rate === undefined ? undefined : amount * rate;
  };
}

/** An event whose person is resolved to its canonical profile key. */
export type KeyedEvent = { key: string; event: ProfileEvent };

/** A person's rows while a batch is folded: their counts by type, their activity by day × type × target × tags. */
type Folding = {
  key: string;
  first: number;
  last: number;
  social: number[];
  counts: Map<string, EventRows['counts'][number]>;
  activity: Map<string, EventRows['activity'][number]>;
};

/** Rows one batch of new events adds, already summed per primary key for multi-row upserts. */
export type EventRows = {
  people: { key: string; firstSeen: string; lastActive: string; social: string[] }[];
  counts: { key: string; type: string; n: number }[];
  purchases: {
    key: string;
    source: string;
    eventId: string;
    orderId: string | null;
    at: string;
    amount: number;
    currency: string;
    baseAmount: number | null;
  }[];
  /**
   * Daily activity (migration 070): per person × UTC day × type × target × tag list, the number of
   * events; `tags` is the list joined by TAG_SEPARATOR, and each tag counts `n` times per appearance.
   */
  activity: {
    key: string;
    day: string;
    type: string;
    targetType: string;
    targetId: string;
    tags: string;
    n: number;
  }[];
  follows: { key: string; targetType: string; targetId: string; following: boolean; at: string }[];
  followHistory: {
    source: string;
    eventId: string;
    key: string;
    targetType: string;
    targetId: string;
    action: string;
    at: string;
  }[];
};

/**
 * Folds a batch into rows (pure; the repository applies each array with one statement). An
 * upsert cannot touch a row twice in one statement, so everything is summed per key here.
 * Within a batch the latest follow/unfollow per target by event time wins, as across batches.
 *
 * This loop runs for every event the segmenter applies, so it allocates as little as it can: a
 * person's counts and activity rows are found under that person (short keys, no closure per event),
 * and each array holds its rows in the order their key first appeared in the batch.
 */
export function foldEvents(events: readonly KeyedEvent[], convert: Converter): EventRows {
  const people = new Map<string, Folding>();
  const counts: EventRows['counts'] = [];
  const activity: EventRows['activity'] = [];
  const follows = new Map<
    string,
    { key: string; targetType: string; targetId: string; following: boolean; at: number }
  >();
  const rows: Pick<EventRows, 'purchases' | 'followHistory'> = { purchases: [], followHistory: [] };
  for (const { key, event: e } of events) {
    const at = Date.parse(e.occurredAt);
    let p = people.get(key);
    if (p === undefined) {
      p = { key, first: at, last: at, social: [], counts: new Map(), activity: new Map() };
      people.set(key, p);
    } else {
      p.first = Math.min(p.first, at);
      p.last = Math.max(p.last, at);
    }
    const type = e.type;
    if (SOCIAL_TYPES.has(type)) p.social.push(at);
    const count = p.counts.get(type);
    if (count === undefined) {
      const row = { key, type, n: 1 };
      p.counts.set(type, row);
      counts.push(row);
    } else count.n += 1;
    const day = e.occurredAt.slice(0, 10);
    const t = e.target;
    const tags = e.tags.join(TAG_SEPARATOR);
    // one key per person × day × type × target × tag list (the person is the map's)
    const id = `${day}\u0000${type}\u0000${t.type}\u0000${t.id}\u0000${tags}`;
    const daily = p.activity.get(id);
    if (daily === undefined) {
      const row = { key, day, type, targetType: t.type, targetId: t.id, tags, n: 1 };
      p.activity.set(id, row);
      activity.push(row);
    } else daily.n += 1;
    if (type === 'purchase') {
      const amount = e.amount ?? 0;
      const currency = e.currency ?? '';
      rows.purchases.push({
        key,
        source: e.source,
        eventId: dedupeId(e),
        orderId: e.orderId ?? null,
        at: e.occurredAt,
        amount,
        currency,
        baseAmount: convert(amount, currency) ?? null,
      });
    }
    if (type === 'follow' || type === 'unfollow') {
      rows.followHistory.push({
        source: e.source,
        eventId: dedupeId(e),
        key,
        targetType: t.type,
        targetId: t.id,
        action: type,
        at: e.occurredAt,
      });
      const fid = `${key}\u0000${t.type}\u0000${t.id}`;
      const prev = follows.get(fid);
      if (!prev || at >= prev.at)
        follows.set(fid, { key, targetType: t.type, targetId: t.id, following: type === 'follow', at });
    }
  }
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    people: [...people.values()].map((p) => ({
      key: p.key,
      firstSeen: iso(p.first),
      lastActive: iso(p.last),
      social: p.social
        .sort((a, b) => b - a)
        .slice(0, MAX_SOCIAL_ACTIVE_COUNT)
        .map(iso),
    })),
    counts,
    purchases: rows.purchases,
    activity,
    follows: [...follows.values()].map((f) => ({ ...f, at: iso(f.at) })),
    followHistory: rows.followHistory,
  };
}
