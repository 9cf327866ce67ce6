import type { TopicMessage } from '@pstream/events';
import { DAY_MS } from '@pstream/lifecycle';

/** mulberry32: a small seeded generator, so every run feeds the same stream. */
export function prng(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CATEGORIES = ['dress', 'lipstick', 'sneakers', 'phone', 'snacks', 'tea', 'baby'];
const SOCIAL = [
  ['like', 0.3],
  ['favorite', 0.15],
  ['share', 0.05],
  ['comment', 0.08],
] as const;

/**
 * The demo's kind of traffic (scripts/demo.ts), for the Postgres benches: people with a favourite
 * category, sessions of clicks and dwells on its products with some likes, favourites, shares,
 * comments, purchases and follows, spread over the last 160 days; every fifth person anonymous.
 * About 12 events per person. Yields chunks of whole people so a million people never sit in
 * memory at once; within a block of about 5 000 events people are interleaved. `first` numbers the first person (so a
 * later fill adds new people).
 */
export function* demoTraffic(opts: {
  people: number;
  first?: number;
  nowMs: number;
  seed?: number;
  eventsPerPerson?: number;
}): Generator<TopicMessage[]> {
  const rand = prng(opts.seed ?? 7);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const first = opts.first ?? 0;
  const perPerson = opts.eventsPerPerson ?? 12;
  let out: TopicMessage[] = [];
  let seq = 0;
  for (let i = first; i < first + opts.people; i++) {
    const id = i % 5 === 4 ? `dev-${i.toString(16)}` : `u-${i}`;
    const who = i % 5 === 4 ? { anonymousId: id } : { userId: id };
    const favourite = pick(CATEGORIES);
    const buyRate = pick([0, 0.02, 0.08, 0.2]);
    const lastDaysAgo = rand() < 0.6 ? rand() * 5 : 31 + rand() * 110;
    let t = opts.nowMs - (lastDaysAgo + rand() * 40) * DAY_MS;
    const event = (
      type: string,
      target: { type: string; id: string },
      tags: string[],
      extra: Record<string, unknown> = {},
    ) => {
      const at = new Date(Math.min(t, opts.nowMs)).toISOString();
      out.push({
        v: 1,
        kind: 'event',
        eventId: `b-${i}-${seq++}`,
        source: 'bench',
        type,
        ...who,
        profileKey: id,
        occurredAt: at,
        receivedAt: at,
        target,
        tags,
        ...extra,
      } as TopicMessage);
      return 1; // events added
    };
    for (let n = 0; n < perPerson;) {
      const category = rand() < 0.8 ? favourite : pick(CATEGORIES);
      const product = { type: 'product', id: `p-${category}-${Math.floor(rand() * 35)}` };
      const tags = [`category:${category}`, `brand:${category}-${Math.floor(rand() * 3)}`];
      n += event('click', product, tags);
      t += 2_000 + rand() * 28_000;
      n += event('dwell', product, tags, { dwellMs: Math.round(3_000 + rand() * 117_000) });
      for (const [type, p] of SOCIAL) {
        if (rand() < p) n += event(type, product, tags);
      }
      if (rand() < buyRate * 3)
        n += event('purchase', product, tags, { amount: 19 + Math.floor(rand() * 980), currency: 'CNY' });
      if (rand() < 0.05)
        n += event(rand() < 0.8 ? 'follow' : 'unfollow', { type: 'shop', id: `s-${category}` }, [
          `category:${category}`,
        ]);
      t += rand() < 0.7 ? 5_000 + rand() * 55_000 : rand() * 3 * DAY_MS;
    }
    if (out.length >= 5_000) {
      yield shuffled(out, rand);
      out = [];
    }
  }
  if (out.length > 0) yield shuffled(out, rand);
}

/** People act at the same time: a block's events interleaved (Fisher-Yates, seeded). */
function shuffled<T>(xs: T[], rand: () => number): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}
