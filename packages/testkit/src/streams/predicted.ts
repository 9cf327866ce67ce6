/**
 * Streams for the predicted-trait tests and bench (docs/api.md §5.9): people whose clicks lean to
 * categories by gender and by age (`lean` of their clicks for gender; as far from uniform over the
 * age bands; 0.5 is no signal at all), some of whom
 * give their gender or birth year and some not. Everyone follows the shop `s-1`.
 */
import type { IdentifyMessage, ProfileEvent } from '@pstream/events';
import { normalizeEvent, normalizeIdentify } from '@pstream/ingest/dialects';
import { prng } from '../index';

const DAY = 86_400_000;
/** Categories that lean female / male, and brands that lean young / middle / older. */
export const BY_GENDER = {
  f: ['dress', 'skirt', 'makeup', 'handbags', 'heels'],
  m: ['watches', 'tools', 'razors', 'sneakers', 'consoles'],
} as const;
export const BY_AGE = {
  '18-24': ['neon', 'pixel', 'drift'],
  '30-34': ['nordic', 'urbane', 'keystone'],
  '50+': ['heritage', 'classic', 'evergreen'],
} as const;
const BIRTH_YEAR = { '18-24': 2004, '30-34': 1994, '50+': 1966 } as const;

export type StreamPerson = {
  id: string;
  gender: 'f' | 'm';
  ageBand: keyof typeof BY_AGE;
  /** What they gave in identify. */
  traits: Record<string, string | number>;
};

/**
 * `people` people; every 5th gives no gender, every 7th no birth year. Each clicks 8 times on a
 * category and 6 times on a brand, each click leaning to their own group with probability `lean`.
 */
export function predictedStream(
  people: number,
  lean: number,
  seed: number,
  nowMs: number,
): { people: StreamPerson[]; messages: { key: string; value: string }[]; events: number } {
  const random = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const out: StreamPerson[] = [];
  const messages: { key: string; value: string }[] = [];
  let events = 0;
  for (let i = 0; i < people; i++) {
    const id = `pt-${seed}-${i}`;
    const gender = random() < 0.6 ? 'f' : 'm';
    const ageBand = pick(Object.keys(BY_AGE) as (keyof typeof BY_AGE)[]);
    const traits: Record<string, string | number> = {};
    if (i % 5 !== 0) traits.gender = gender === 'f' ? 'F' : 'M';
    if (i % 7 !== 0) traits.birthYear = BIRTH_YEAR[ageBand];
    out.push({ id, gender, ageBand, traits });
    if (Object.keys(traits).length > 0) {
      const identify = normalizeIdentify({ userId: id, traits }, { source: 'test', now: nowMs });
      if (!identify.ok) throw new Error(JSON.stringify(identify.errors));
      messages.push({ key: id, value: JSON.stringify(identify.value satisfies IdentifyMessage) });
    }
    const other = gender === 'f' ? 'm' : 'f';
    const clicks: string[] = [];
    for (let n = 0; n < 8; n++) clicks.push(`category:${pick(BY_GENDER[random() < lean ? gender : other])}`);
    const bands = Object.keys(BY_AGE) as (keyof typeof BY_AGE)[];
    // as far from uniform over the three bands as `lean` is over two genders: none at 0.5
    const own = (1 + (bands.length - 1) * (2 * lean - 1)) / bands.length;
    for (let n = 0; n < 6; n++)
      clicks.push(`brand:${pick(BY_AGE[random() < own ? ageBand : pick(bands.filter((b) => b !== ageBand))])}`);
    // and everyone follows the shop s-1, whose follower mix then shows the predictions
    [...clicks, 'follow'].forEach((tag, n) => {
      const follow = tag === 'follow';
      const e = normalizeEvent(
        {
          eventId: `${id}-${n}`,
          type: follow ? 'follow' : 'click',
          userId: id,
          occurredAt: new Date(nowMs - 60_000 - Math.floor(random() * 10 * DAY)).toISOString(),
          target: follow ? { type: 'shop', id: 's-1' } : { type: 'product', id: `p-${Math.floor(random() * 40)}` },
          tags: follow ? [] : [tag],
        },
        { source: 'test', now: nowMs },
      );
      if (!e.ok) throw new Error(JSON.stringify(e.errors));
      messages.push({ key: id, value: JSON.stringify(e.value satisfies ProfileEvent) });
      events++;
    });
  }
  return { people: out, messages, events };
}
