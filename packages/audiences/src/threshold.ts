import type { DecayParams } from '@pstream/scoring';

/**
 * "The tag's value is at least v now", as a bound on the stored forward-decayed score.
 *
 * value = s·tanh(score/s) ≥ v  ⇔  score ≥ s·atanh(v/s)   (v < s; tanh never reaches s)
 * score = stored·2^(−(now−L)/H) ⇒ stored ≥ s·atanh(v/s)·2^((now−L)/H)
 *
 * The bound depends only on v and `now`, never on the person, so one range query on a per-tag
 * index of stored scores answers the leaf, and nothing stored is rewritten as time passes.
 * Infinity when v cannot be reached.
 */
export function storedThreshold(minValue: number, nowMs: number, decay: DecayParams, scale: number): number {
  if (minValue >= scale) return Infinity;
  return scale * Math.atanh(minValue / scale) * 2 ** ((nowMs - decay.landmarkMs) / decay.halfLifeMs);
}

/**
 * When a person whose stored score is `stored` stops meeting `minValue` by decay alone: the
 * instant their value falls below it (the inverse of `storedThreshold`). −Infinity when it never held.
 */
export function dropsBelowAt(stored: number, minValue: number, decay: DecayParams, scale: number): number {
  if (minValue >= scale || stored <= 0) return -Infinity;
  return decay.landmarkMs + decay.halfLifeMs * Math.log2(stored / (scale * Math.atanh(minValue / scale)));
}
