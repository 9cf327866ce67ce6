import type { SocialAction } from '@pstream/events';

/**
 * Behaviour weights of docs/model.md §4.1; every one is configuration with these defaults. Each
 * social action (EVENT_ROLES in packages/events) has its own weight, added to a visit per action.
 */
export type Weights = Record<SocialAction, number> & {
  visitBase: number;
  follow: number;
  purchase: number;
  /** Dwell factor below `dwellShortMs`, between the bounds, and above `dwellLongMs`. */
  dwellShort: number;
  dwellMid: number;
  dwellLong: number;
  dwellShortMs: number;
  dwellLongMs: number;
};

/** The defaults: the scorer's WEIGHT_* and DWELL_* settings read them from here. */
export const DEFAULT_WEIGHTS: Weights = {
  visitBase: 1,
  comment: 0.5,
  like: 0.5,
  share: 2,
  favorite: 1,
  follow: 3,
  purchase: 4,
  dwellShort: 0.5,
  dwellMid: 1,
  dwellLong: 2,
  dwellShortMs: 10_000,
  dwellLongMs: 60_000,
};

/** f(total dwell): 0.5 below 10 s, 1 from 10 s to 60 s, 2 above 60 s, 1 while none was reported. */
export function dwellFactor(totalDwellMs: number | undefined, w: Weights = DEFAULT_WEIGHTS): number {
  if (totalDwellMs === undefined) return w.dwellMid;
  if (totalDwellMs < w.dwellShortMs) return w.dwellShort;
  if (totalDwellMs <= w.dwellLongMs) return w.dwellMid;
  return w.dwellLong;
}
