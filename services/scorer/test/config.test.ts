import { DAY_MS, MAX_MERGED_IDS } from '@pstream/events';
import { DEFAULT_HALF_LIFE_DAYS, DEFAULT_WEIGHTS } from '@pstream/scoring';
import { loadConfig, scoringParams, storeOptions } from '../src/config';

describe('scorer config', () => {
  it('defaults to the weights, dwell bounds and half-life of packages/scoring', () => {
    const params = scoringParams(loadConfig({}));
    expect(params.weights).toEqual(DEFAULT_WEIGHTS);
    expect(params.decay.halfLifeMs).toBe(DEFAULT_HALF_LIFE_DAYS * DAY_MS);
    expect(storeOptions(loadConfig({})).maxMergedIds).toBe(MAX_MERGED_IDS);
  });

  it('reads a weight and a dwell bound from the environment', () => {
    expect(scoringParams(loadConfig({ WEIGHT_SHARE: '3', DWELL_LONG_MS: '90000' })).weights).toMatchObject({
      share: 3,
      dwellLongMs: 90_000,
    });
  });
});
