import { createWriteKeyCheck } from '../src/auth';

describe('write keys', () => {
  const check = createWriteKeyCheck(new Map([['k-web', 'web'], ['k-app', 'app']]));
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
