import type { ProfileEvent } from '@pstream/events';
import { applyEvent, emptyModel, type PersonModel, type ScoringParams } from '@pstream/scoring';
import { toScoringEvent } from '../src/score';

/** Throws naming the first tag whose scores differ by more than `rel` relative. */
export function expectSameScores(
  got: Map<string, Map<string, number>>,
  want: Map<string, Map<string, number>>,
  rel = 1e-9,
): void {
  for (const [id, w] of want) {
    const g = got.get(id) ?? new Map<string, number>();
    for (const tag of new Set([...g.keys(), ...w.keys()])) {
      const a = g.get(tag) ?? 0;
      const b = w.get(tag) ?? 0;
      if (Math.abs(a - b) > rel * Math.max(Math.abs(b), 1e-6)) throw new Error(`${id} ${tag}: got ${a}, want ${b}`);
    }
  }
}

/** What the pure model (packages/scoring) gives for these messages, per person, deduped by event id. */
export function modelScores(
  messages: ProfileEvent[],
  params: ScoringParams,
  catalog: ReadonlyMap<string, string[]> = new Map(),
): Map<string, Map<string, number>> {
  const models = new Map<string, PersonModel>();
  const seen = new Set<string>();
  for (const m of messages) {
    const id = `${m.source}|${m.eventId}`;
    if (seen.has(id)) continue;
    seen.add(id);
    let model = models.get(m.profileKey);
    if (!model) models.set(m.profileKey, (model = emptyModel()));
    applyEvent(model, toScoringEvent(m, catalog), params);
  }
  return new Map([...models].map(([id, model]) => [id, model.interests]));
}
