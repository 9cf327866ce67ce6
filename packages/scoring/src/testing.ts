import { decayParams, type DecayParams } from './decay';
import type { ScoringParams } from './model';
import type { TimelineParams } from './timeline';
import { DEFAULT_WEIGHTS } from './weights';

/**
 * The parameters tests and benchmarks score with: the documented defaults (docs/model.md §4.1 — seed weights,
 * a 30-minute visit gap, a 30-day half-life from the 2026-01-01 landmark) in one place, so no test spells them
 * out again. Imported as `@pstream/scoring/testing`; production code builds its parameters from the
 * environment (services/scorer/src/config.ts).
 */
export const TEST_DECAY: DecayParams = decayParams('2026-01-01T00:00:00Z', 30);

/** §4.1's parameters with the defaults above; `maxOpenVisits` and any other field can be overridden. */
export function testScoringParams(overrides: Partial<ScoringParams> = {}): ScoringParams {
  return { weights: DEFAULT_WEIGHTS, visitGapMs: 30 * 60_000, decay: TEST_DECAY, maxOpenVisits: 100, ...overrides };
}

/** The timeline's parameters (W = 48 h, 1 000 tags unless overridden) on top of `testScoringParams`. */
export function testTimelineParams(overrides: Partial<TimelineParams> = {}): TimelineParams {
  return { ...testScoringParams(), latenessMs: 48 * 3_600_000, maxTags: 1000, ...overrides };
}
