import { createLogger, createMetrics, createPool } from '@pstream/platform';
import { Redis } from 'ioredis';
import { buildApp } from '../src/app';
import { loadConfig } from '../src/config';

describe('query API logs', () => {
  it('a request that fails with a 500 is logged without its bearer token', async () => {
    const chunks: string[] = [];
    const log = createLogger('query-api', 'info', { write: (s: string) => void chunks.push(s) });
    const config = loadConfig({
      API_TOKENS: 'secret-token-123=*',
      DATABASE_URL: 'postgres://postgres@127.0.0.1:1/profiles',
    });
    // A Postgres nobody listens on: the read fails for real (ECONNREFUSED) and the request answers 500.
    const pool = createPool(config.DATABASE_URL, config.PG_SCHEMA, 'test-redaction');
    const redis = new Redis('redis://127.0.0.1:1', { lazyConnect: true });
    const app = await buildApp(config, { log, redis, pool, checks: [], metrics: createMetrics('query-api') });
    try {
      for (const authorization of ['Bearer secret-token-123', 'bearer secret-token-123']) {
        const res = await app.inject({
          method: 'GET',
          url: '/v1/profiles/u-1',
          headers: { authorization, cookie: 'session=secret-cookie-456' },
        });
        expect(res.statusCode).toBe(500);
      }
      const logged = chunks.join('');
      expect(logged).toContain('request failed');
      expect(logged).toContain('ECONNREFUSED');
      expect(logged).not.toContain('secret-token-123');
      expect(logged).not.toContain('secret-cookie-456');
    } finally {
      await app.close();
      await pool.end();
      redis.disconnect();
    }
  });
});
