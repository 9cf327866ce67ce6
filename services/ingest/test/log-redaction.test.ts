import { createLogger, createMetrics } from '@pstream/platform';
import { buildApp } from '../src/app';
import { loadConfig } from '../src/config';

/** The log lines a service writes, as text, through the logger main.ts builds. */
function capture() {
  const chunks: string[] = [];
  const log = createLogger('ingest', 'info', { write: (s: string) => void chunks.push(s) });
  return { log, text: () => chunks.join('') };
}

describe('logs never carry credentials', () => {
  it('a request that fails with a 500 is logged without its write key, Basic credentials or bearer token', async () => {
    const { log, text } = capture();
    const config = loadConfig({ LOG_LEVEL: 'info', WRITE_KEYS: 'secret-write-key-123=web' });
    // The one stand-in here: a publisher failing with an unexpected error, the only way to make
    // ingest answer 500 on purpose.
    const publisher = { publish: async () => Promise.reject(new Error('unexpected failure in the publisher')) };
    const app = await buildApp(config, { log, publisher, checks: [], metrics: createMetrics('ingest') });
    try {
      const basic = `Basic ${Buffer.from('secret-write-key-123:').toString('base64')}`;
      for (const headers of [{ 'x-write-key': 'secret-write-key-123' }, { authorization: basic }]) {
        const res = await app.inject({
          method: 'POST',
          url: '/v1/events',
          headers: { ...headers, 'content-type': 'application/json', cookie: 'session=secret-cookie-456', 'proxy-authorization': 'Bearer secret-token-789' },
          payload: { type: 'click', userId: 'u-1', target: { type: 'product', id: 'p-1' } },
        });
        expect(res.statusCode).toBe(500);
      }
      const logged = text();
      expect(logged).toContain('request failed');
      expect(logged).toContain('unexpected failure in the publisher');
      for (const secret of ['secret-write-key-123', Buffer.from('secret-write-key-123:').toString('base64'), 'secret-cookie-456', 'secret-token-789']) {
        expect(logged).not.toContain(secret);
      }
    } finally {
      await app.close();
    }
  });

  it('redacts credential headers and token settings wherever a log line carries them', () => {
    const { log, text } = capture();
    log.error(
      {
        headers: { authorization: 'Bearer t-1', 'x-write-key': 'k-1' },
        req: { headers: { authorization: 'Bearer t-2' } },
        config: { WRITE_KEYS: 'k-3=web', API_TOKENS: 't-4=*' },
      },
      'something failed',
    );
    const logged = text();
    for (const secret of ['t-1', 'k-1', 't-2', 'k-3', 't-4']) expect(logged).not.toContain(secret);
    expect(logged).toContain('[redacted]');
  });
});
