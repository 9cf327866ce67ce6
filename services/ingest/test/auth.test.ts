import { createWriteKeyCheck } from '../src/auth';
import { loadConfig } from '../src/config';

describe('write keys', () => {
  const check = createWriteKeyCheck(
    new Map([
      ['k-web', 'web'],
      ['k-app', 'app'],
    ]),
  );
  it('maps each key to its source', () => {
    expect(check('k-web')).toBe('web');
    expect(check('k-app')).toBe('app');
  });
  it('refuses unknown, partial and missing keys', () => {
    expect(check('k-we')).toBeUndefined();
    expect(check('')).toBeUndefined();
    expect(check(undefined)).toBeUndefined();
  });
});

describe('WRITE_KEYS', () => {
  it('names the variable and the bad pair', () => {
    expect(() => loadConfig({ WRITE_KEYS: 'k-web=web,k-app' })).toThrow(
      'WRITE_KEYS: pair 2 "k-ap…" is not key=source: no "="',
    );
    expect(() => loadConfig({ WRITE_KEYS: 'k-web=web,k-web=app' })).toThrow(
      'WRITE_KEYS: pair 2 "k-we…=app" is not key=source: the key appears twice',
    );
  });
});
