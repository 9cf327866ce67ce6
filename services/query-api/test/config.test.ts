import { SCOPES, loadConfig } from '../src/config';

describe('query-api config', () => {
  it('reads API_TOKENS as token → scopes, * granting all', () => {
    const tokens = loadConfig({ API_TOKENS: 'ops-token=ops:read, all=*, two=profiles:read+privacy:write' }).API_TOKENS;
    expect([...tokens.get('ops-token')!]).toEqual(['ops:read']);
    expect([...tokens.get('all')!]).toEqual([...SCOPES]);
    expect([...tokens.get('two')!]).toEqual(['profiles:read', 'privacy:write']);
  });

  it('names API_TOKENS and the bad pair, without printing the whole token', () => {
    expect(() => loadConfig({ API_TOKENS: 'good=*,secret-token=profile:read' })).toThrow(
      /API_TOKENS: pair 2 "secr…=profile:read" is not token=scope\+scope .*: value names an unknown scope/,
    );
  });
});
