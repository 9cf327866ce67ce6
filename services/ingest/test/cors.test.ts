import { createMetrics } from '@pstream/platform';
import { silentLog } from '@pstream/testkit';
import { buildApp } from '../src/app';
import { loadConfig } from '../src/config';
import { createOriginPolicy } from '../src/cors';

describe('CORS origin policy', () => {
  const policy = createOriginPolicy(
    ['https://all.example'],
    new Map([
      ['k1', ['https://one.example']],
      ['k2', ['*']],
    ]),
  );

  it('allows a global origin for every key and a keyed origin for its key only', () => {
    expect(policy.forKey('k1', 'https://all.example')).toBe(true);
    expect(policy.forKey('k1', 'https://one.example')).toBe(true);
    expect(policy.forKey('k3', 'https://one.example')).toBe(false);
    expect(policy.forKey('k2', 'https://anything.example')).toBe(true);
    expect(policy.anyKey('https://one.example')).toBe(true);
  });

  it('allows nothing by default', () => {
    const none = createOriginPolicy([], new Map());
    expect([none.anyKey('https://a.example'), none.forKey('k', 'https://a.example')]).toEqual([false, false]);
  });

  it('refuses a configuration naming a bad origin or a key that is not a write key, without printing the key', () => {
    expect(() => loadConfig({ WRITE_KEYS: 'k=web', CORS_ORIGINS: 'shop.example' })).toThrow(
      /CORS_ORIGINS: "shop.example" is not an origin/,
    );
    expect(() => loadConfig({ WRITE_KEYS: 'k=web', CORS_ORIGINS_BY_KEY: 'secret-key=https://a.example' })).toThrow(
      /1 entry names a key not in WRITE_KEYS/,
    );
    expect(() => loadConfig({ WRITE_KEYS: 'k=web', CORS_ORIGINS_BY_KEY: 'secret-key' })).toThrow(
      /pair 1 .* is not key=origin\|origin/,
    );
    try {
      loadConfig({ WRITE_KEYS: 'k=web', CORS_ORIGINS_BY_KEY: 'secret-key' });
    } catch (err) {
      expect((err as Error).message).not.toContain('secret-key');
    }
    expect(
      loadConfig({
        WRITE_KEYS: 'k=web',
        CORS_ORIGINS: 'HTTPS://Shop.example, http://localhost:3000',
        CORS_ORIGINS_BY_KEY: 'k=https://a.example|*',
      }),
    ).toMatchObject({
      CORS_ORIGINS: ['https://shop.example', 'http://localhost:3000'],
      CORS_ORIGINS_BY_KEY: new Map([['k', ['https://a.example', '*']]]),
    });
  });
});

/** Responses that never reach Kafka (a preflight, a refusal): checked on the app alone. */
describe('CORS on the ingest app', () => {
  const publisher = { publish: () => Promise.reject(new Error('not reached in these tests')) };
  const build = () =>
    buildApp(
      loadConfig({
        WRITE_KEYS: 'k1=web,k2=app',
        CORS_ORIGINS: 'https://all.example',
        CORS_ORIGINS_BY_KEY: 'k1=https://shop.example',
      }),
      { log: silentLog, publisher, checks: [], metrics: createMetrics('ingest') },
    );
  const preflight = {
    'access-control-request-method': 'POST',
    'access-control-request-headers': 'authorization,content-type',
  };

  it('answers a preflight from an allowed origin without a write key, echoing the origin and never allowing credentials', async () => {
    const app = await build();
    const res = await app.inject({
      method: 'OPTIONS',
      url: '/v1/t',
      headers: { origin: 'https://shop.example', host: 'ingest.example', ...preflight },
    });
    expect(res.statusCode).toBe(204);
    expect(res.headers).toMatchObject({
      'access-control-allow-origin': 'https://shop.example',
      'access-control-allow-methods': 'POST, OPTIONS',
      'access-control-allow-headers': 'authorization,content-type',
    });
    expect(res.headers).not.toHaveProperty('access-control-allow-credentials');
    expect(String(res.headers.vary)).toContain('Origin');
    await app.close();
  });

  it('refuses a preflight and a post from an origin nobody allows, with no Allow-Origin', async () => {
    const app = await build();
    for (const res of [
      await app.inject({ method: 'OPTIONS', url: '/v1/t', headers: { origin: 'https://evil.example', ...preflight } }),
      await app.inject({
        method: 'POST',
        url: '/v1/t',
        headers: { origin: 'https://evil.example', 'x-write-key': 'k1', 'content-type': 'text/plain' },
        payload: '{}',
      }),
    ]) {
      expect([res.statusCode, res.json().error.code]).toEqual([403, 'ING_ORIGIN_NOT_ALLOWED']);
      expect(res.headers).not.toHaveProperty('access-control-allow-origin');
    }
    await app.close();
  });

  it('refuses a post whose key does not allow its origin, and lets the browser read the refusal', async () => {
    const app = await build();
    const res = await app.inject({
      method: 'POST',
      url: '/v1/t',
      headers: { origin: 'https://shop.example', 'content-type': 'text/plain' },
      payload: JSON.stringify({ writeKey: 'k2', event: 'x' }),
    });
    expect([res.statusCode, res.json().error.code]).toEqual([403, 'ING_ORIGIN_NOT_ALLOWED']);
    expect(res.headers['access-control-allow-origin']).toBe('https://shop.example');
    const unknown = await app.inject({
      method: 'POST',
      url: '/v1/t',
      headers: { origin: 'https://all.example', 'content-type': 'text/plain' },
      payload: JSON.stringify({ writeKey: 'nope', event: 'x' }),
    });
    expect([unknown.statusCode, unknown.headers['access-control-allow-origin']]).toEqual([401, 'https://all.example']);
    await app.close();
  });

  it('treats a page of ingest’s own origin (its /docs) as no CORS at all', async () => {
    const app = await build();
    const res = await app.inject({
      method: 'POST',
      url: '/v1/track',
      headers: {
        origin: 'http://ingest.example:8080',
        host: 'ingest.example:8080',
        'content-type': 'application/json',
      },
      payload: '{}',
    });
    expect(res.statusCode).toBe(401);
    expect(res.headers).not.toHaveProperty('access-control-allow-origin');
    await app.close();
  });
});
