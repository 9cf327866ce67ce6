import { DAY_MS } from '@pstream/events';

/** Default half-life of interest decay (docs/model.md §4.1); DECAY_HALF_LIFE_DAYS reads it. */
export const DEFAULT_HALF_LIFE_DAYS = 30;
/** Default upper end of the tag value S-curve (docs/model.md §4.1); INTEREST_VALUE_SCALE reads it. */
export const DEFAULT_VALUE_SCALE = 10;

/**
 * Forward decay (Cormode et al., 2009) with a fixed landmark L and half-life H.
 *
 * A weight w at event time t is stored as w·2^((t−L)/H); reading at `now` multiplies the stored
 * sum by 2^(−(now−L)/H). The product is w·2^(−(now−t)/H), the plain exponential decay, but an
 * update is a single addition and stored values never need rewriting as time passes.
 *
 * The stored factor doubles every H; with H = 30 days a double holds it for ~80 years past L,
 * so L is a deployment constant that only needs moving (by a rebuild) in the far future.
 */
export type DecayParams = { landmarkMs: number; halfLifeMs: number };

export function decayParams(landmarkIso: string, halfLifeDays: number): DecayParams {
  return { landmarkMs: Date.parse(landmarkIso), halfLifeMs: halfLifeDays * DAY_MS };
}

/** The stored (forward) form of weight `w` observed at `atMs`. */
export function forwardWeight(w: number, atMs: number, p: DecayParams): number {
  return w * 2 ** ((atMs - p.landmarkMs) / p.halfLifeMs);
}

/** A stored forward sum read at `nowMs`: the decayed score. */
export function decayedScore(stored: number, nowMs: number, p: DecayParams): number {
  return stored * 2 ** (-(nowMs - p.landmarkMs) / p.halfLifeMs);
}

/** A tag's value: the score squashed onto 0..scale by an S-curve, `scale·tanh(score/scale)`. */
export function tagValue(score: number, scale = DEFAULT_VALUE_SCALE): number {
  return scale * Math.tanh(score / scale);
}
