/** Waves of events spread over a fixed set of people, and what their counts must be after. */
import type { Pool } from '@pstream/platform';

const PEOPLE = 40;

/** `n` click/like events spread over PEOPLE people, as the events topic carries them. */
export function wave(tag: string, n: number) {
  const now = Date.now();
  return Array.from({ length: n }, (_, i) => {
    const userId = `f-${i % PEOPLE}`;
    const at = new Date(now - (i % 1000) * 60_000).toISOString();
    const value = {
      v: 1,
      kind: 'event',
      eventId: `${tag}-${i}`,
      source: 'faults',
      type: i % 3 === 0 ? 'like' : 'click',
      userId,
      profileKey: userId,
      occurredAt: at,
      receivedAt: at,
      target: { type: 'product', id: `p-${i % 7}` },
      tags: ['category:x'],
    };
    return { key: userId, value: JSON.stringify(value) };
  });
}

export async function countsOf(pool: Pool, schema: string): Promise<Map<string, string>> {
  const { rows } = await pool.query<{ profile_key: string; c: string }>(
    `SELECT profile_key, string_agg(type || '=' || n, ',' ORDER BY type) AS c FROM ${schema}.event_counts GROUP BY profile_key`,
  );
  return new Map(rows.map((r) => [r.profile_key, r.c]));
}

export function wantCounts(waves: number[]): Map<string, string> {
  const per = new Map<string, { click: number; like: number }>();
  for (const n of waves) {
    for (let i = 0; i < n; i++) {
      const c = per.get(`f-${i % PEOPLE}`) ?? { click: 0, like: 0 };
      if (i % 3 === 0) c.like += 1;
      else c.click += 1;
      per.set(`f-${i % PEOPLE}`, c);
    }
  }
  return new Map(
    [...per].map(([k, c]) => [
      k,
      [c.click > 0 && `click=${c.click}`, c.like > 0 && `like=${c.like}`].filter(Boolean).join(','),
    ]),
  );
}

export async function total(pool: Pool, schema: string): Promise<number> {
  const { rows } = await pool.query(`SELECT coalesce(sum(n), 0)::int AS n FROM ${schema}.event_counts`);
  return rows[0].n as number;
}
