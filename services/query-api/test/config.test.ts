import { QUERY_PREWARM } from '@pstream/profile-store';
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

  it("reads PG_PREWARM as relation → mode: profile-store's list by default, empty for none, a bad mode refused", () => {
    const env = { API_TOKENS: 'all=*' };
    expect([...loadConfig(env).PG_PREWARM]).toEqual([...QUERY_PREWARM]);
    expect(loadConfig({ ...env, PG_PREWARM: '' }).PG_PREWARM.size).toBe(0);
    expect([...loadConfig({ ...env, PG_PREWARM: 'activity=buffer, people=prefetch' }).PG_PREWARM]).toEqual([
      ['activity', 'buffer'],
      ['people', 'prefetch'],
    ]);
    expect(() => loadConfig({ ...env, PG_PREWARM: 'activity=all' })).toThrow(/PG_PREWARM: pair 1 "activity=all"/);
    expect(() => loadConfig({ ...env, PG_PREWARM: 'x; DROP=read' })).toThrow(/PG_PREWARM: pair 1/);
  });
});
