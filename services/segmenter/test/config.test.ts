import { DEFAULT_RULES } from '@pstream/lifecycle';
import { lifecycleRules, loadConfig } from '../src/config';

describe('segmenter config', () => {
  it('defaults to the §4.3 thresholds and a 60 s sweep', () => {
    const config = loadConfig({});
    expect(lifecycleRules(config)).toEqual(DEFAULT_RULES);
    expect(config.SEGMENTER_SWEEP_INTERVAL_MS).toBe(60_000);
    expect(config.CURRENCY_RATES.size).toBe(0);
  });

  it('reads currency rates and thresholds from the environment', () => {
    const config = loadConfig({
      CURRENCY_RATES: 'USD=7.1, EUR=7.8',
      LIFECYCLE_AT_RISK_DAYS: '14',
      TIER_SOCIAL_ACTIVE_COUNT: '3',
    });
    expect([...config.CURRENCY_RATES]).toEqual([
      ['USD', 7.1],
      ['EUR', 7.8],
    ]);
    expect(lifecycleRules(config)).toMatchObject({ atRiskAfterDays: 14, socialActiveCount: 3 });
  });

  it('names a bad rate, a social count above 16 and a dedupe window under 24 h', () => {
    expect(() => loadConfig({ CURRENCY_RATES: 'usd=7' })).toThrow(
      'CURRENCY_RATES: pair 1 "usd=7" is not CODE=rate (e.g. USD=7.1): key must be an ISO-4217 code such as USD',
    );
    expect(() => loadConfig({ TIER_SOCIAL_ACTIVE_COUNT: '17' })).toThrow(/TIER_SOCIAL_ACTIVE_COUNT/);
    expect(() => loadConfig({ DEDUPE_WINDOW_HOURS: '12' })).toThrow(/DEDUPE_WINDOW_HOURS/);
  });

  it('keeps a year of daily aggregates by default and refuses a retention shorter than the longest rule window', () => {
    expect(loadConfig({}).RETENTION_DAYS).toBe(365);
    expect(loadConfig({ RETENTION_DAYS: '400' }).RETENTION_DAYS).toBe(400);
    expect(() => loadConfig({ RETENTION_DAYS: '364' })).toThrow(
      /RETENTION_DAYS: must be at least 365: audience rules read up to 365 days/,
    );
  });
});
