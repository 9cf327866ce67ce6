import type { ProfileEvent } from '@pstream/events';

/** What one batch adds to one person's facts. */
export type FactsDelta = {
  profileKey: string;
  firstSeenMs: number;
  lastActiveMs: number;
  counts: Map<string, number>;
  purchases: { source: string; eventId: string; occurredMs: number; amount: number; currency: string }[];
};

/** Folds a batch of new events into one delta per person (pure; the SQL then applies them set-wise). */
export function foldFacts(events: ProfileEvent[]): FactsDelta[] {
  const byPerson = new Map<string, FactsDelta>();
  for (const e of events) {
    const at = Date.parse(e.occurredAt);
    let d = byPerson.get(e.profileKey);
    if (!d) {
      d = { profileKey: e.profileKey, firstSeenMs: at, lastActiveMs: at, counts: new Map(), purchases: [] };
      byPerson.set(e.profileKey, d);
    }
    d.firstSeenMs = Math.min(d.firstSeenMs, at);
    d.lastActiveMs = Math.max(d.lastActiveMs, at);
    d.counts.set(e.type, (d.counts.get(e.type) ?? 0) + 1);
    if (e.type === 'purchase') {
      d.purchases.push({ source: e.source, eventId: e.eventId, occurredMs: at, amount: e.amount ?? 0, currency: e.currency ?? '' });
    }
  }
  return [...byPerson.values()];
}
