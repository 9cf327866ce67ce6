import type { ProfileEvent } from '@pstream/events';
import { normalizeEvent } from '@pstream/ingest/dialects';
import { keys, readAppliedDigests, readStoredInterests } from '@pstream/interest-store';
import type { Redis } from '@pstream/platform';
import type { Kafka } from 'kafkajs';
import { prng, produceRaw } from '../index';

const MIN = 60_000;
const TAGS = [
  'category:dress',
  'category:shoes',
  'brand:acme',
  'brand:zed',
  'style:casual',
  'style:formal',
  'color:red',
  'topic:summer',
];
const TARGETS = [
  ...Array.from({ length: 12 }, (_, i) => ({ type: 'product' as const, id: `p-${i}` })),
  ...Array.from({ length: 4 }, (_, i) => ({ type: 'shop' as const, id: `s-${i}` })),
  ...Array.from({ length: 4 }, (_, i) => ({ type: 'content' as const, id: `c-${i}` })),
  ...Array.from({ length: 3 }, (_, i) => ({ type: 'creator' as const, id: `cr-${i}` })),
];
/** Dwell values at and around the §4.1 boundaries, and some ordinary ones. */
const DWELLS = [9_999, 10_000, 60_000, 60_001, 3_000, 25_000, 90_000];
/** Gaps between a visit's events: short ones, just under and exactly at the 30-minute gap, and a late second look. */
const GAPS = [5_000, 2 * MIN, 10 * MIN, 30 * MIN - 1, 30 * MIN, 31 * MIN, 45 * MIN];

export type Generated = {
  /** Native envelopes in per-person time order (a person's events are generated together). */
  events: Record<string, unknown>[];
  /** Profile keys of the people. */
  people: string[];
};

/**
 * A seeded stream of valid events for `people` people between `fromMs` and `toMs`: visits on a
 * pool of targets with clicks (and visits opened without one), dwell at the boundaries, actions,
 * second looks across the gap, visits on two targets interleaved, follows, repeated follows,
 * unfollows and re-follows, purchases, tagless events (for the catalog), and resent duplicates.
 */
export function generateStream(seed: number, people: number, fromMs: number, toMs: number, perPerson = 24): Generated {
  const rand = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const events: Record<string, unknown>[] = [];
  const keys: string[] = [];
  for (let p = 0; p < people; p++) {
    const anonymous = p % 4 === 3;
    const id = anonymous ? `anon-${seed}-${p}` : `u-${seed}-${p}`;
    keys.push(id);
    const who = anonymous ? { anonymousId: id } : { userId: id };
    let t = fromMs + Math.floor(rand() * (toMs - fromMs) * 0.3);
    let n = 0;
    const emit = (type: string, target: { type: string; id: string }, extra: Record<string, unknown> = {}) => {
      const tags = rand() < 0.15 ? [] : TAGS.filter(() => rand() < 0.25);
      const e = {
        eventId: `${id}-${n++}`,
        type,
        ...who,
        occurredAt: new Date(Math.min(t, toMs)).toISOString(),
        target,
        tags,
        ...extra,
      };
      events.push(e);
      if (rand() < 0.03) events.push({ ...e }); // a client retry: same event id
    };
    while (n < perPerson) {
      const target = pick(TARGETS);
      const r = rand();
      if (r < 0.6) {
        // a visit, sometimes with a second target's visit interleaved
        const other = pick(TARGETS);
        if (rand() < 0.85) emit('click', target);
        else if (rand() < 0.5) emit('dwell', target, { dwellMs: pick(DWELLS) });
        else emit('like', target);
        for (let k = Math.floor(rand() * 4); k > 0; k--) {
          t += pick(GAPS);
          const type = pick(['dwell', 'dwell', 'like', 'comment', 'share', 'favorite'] as const);
          emit(type, rand() < 0.2 ? other : target, type === 'dwell' ? { dwellMs: pick(DWELLS) } : {});
        }
      } else if (r < 0.8) {
        emit('follow', target);
        if (rand() < 0.3) {
          t += MIN;
          emit('follow', target); // already followed: adds nothing
        }
        if (rand() < 0.5) {
          t += pick(GAPS);
          emit('unfollow', target);
          if (rand() < 0.5) {
            t += pick(GAPS);
            emit('follow', target); // re-follow counts anew
          }
        }
      } else if (r < 0.9) {
        emit('unfollow', target); // often of a target not followed: nothing
      } else {
        emit('purchase', target, { amount: 99, currency: 'CNY' });
      }
      t += Math.floor(rand() * 6 * 60 * MIN);
      if (events.length > 0 && t > toMs) break;
    }
  }
  return { events, people: keys };
}

/** Normalizes native envelopes as ingest does and produces them (acks=all), keyed by profile key. */
export async function produceEvents(
  kafka: Kafka,
  topic: string,
  natives: Record<string, unknown>[],
  source = 'test',
): Promise<ProfileEvent[]> {
  const now = Date.now();
  const messages: ProfileEvent[] = natives.map((n) => {
    const r = normalizeEvent(n, { source, now });
    if (!r.ok) throw new Error(`generated an invalid event: ${JSON.stringify(r.errors)}`);
    return r.value;
  });
  await produceRaw(
    kafka,
    topic,
    messages.map((m) => ({ key: m.profileKey, value: JSON.stringify(m) })),
  );
  return messages;
}

/** Every stored (forward) score of every person under `prefix`, as readers read them (interest-store read.ts). */
export async function storedScores(
  redis: Redis,
  prefix: string,
  people: string[],
): Promise<Map<string, Map<string, number>>> {
  return readStoredInterests(redis, keys(prefix), people);
}

/** How many events the scorer has recorded as applied for these people (their dedupe records). */
export async function appliedCount(redis: Redis, prefix: string, people: string[]): Promise<number> {
  const records = await readAppliedDigests(redis, keys(prefix), people);
  return [...records.values()].reduce((s, d) => s + d.size, 0);
}
