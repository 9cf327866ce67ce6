import { Writable } from 'node:stream';
import { createMetrics } from '@pstream/platform';
import pino from 'pino';
import { buildApp } from '../src/app';
import { loadConfig } from '../src/config';

const KEY = 'wk-Secret-1234567890';

/**
 * The write key travels in the body (analytics.js) or a header; neither may reach a log line, even
 * when a request fails in a way that is logged in full. The publisher here fails on purpose (a
 * bug-like error, not a Kafka one) to force that logged 500 path, which real Kafka cannot cause.
 */
describe('write keys in logs', () => {
  it('never writes the write key to the log, from the body or a header, even for a failing request', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(chunk.toString('utf8')), done()) });
    const log = pino({ level: 'trace' }, sink);
    const publisher = { publish: () => Promise.reject(new TypeError('boom')) };
    const app = await buildApp(loadConfig({ WRITE_KEYS: `${KEY}=web` }), {
      log,
      publisher,
      checks: [],
      metrics: createMetrics('ingest'),
    });
    const track = { type: 'track', event: 'Product Viewed', userId: 'u-1', properties: { product_id: 'p-1' } };
    const basic = `Basic ${Buffer.from(`${KEY}:`).toString('base64')}`;
    const responses = [
      await app.inject({
        method: 'POST',
        url: '/v1/t',
        headers: { 'content-type': 'text/plain' },
        payload: JSON.stringify({ ...track, writeKey: KEY }),
      }),
      await app.inject({
        method: 'POST',
        url: '/v1/track',
        headers: { 'content-type': 'application/json', authorization: basic },
        payload: JSON.stringify(track),
      }),
      await app.inject({
        method: 'POST',
        url: '/v1/b',
        headers: { 'content-type': 'text/plain', 'x-write-key': KEY },
        payload: JSON.stringify({ batch: [track], writeKey: KEY }),
      }),
    ];
    expect(responses.map((r) => r.statusCode)).toEqual([500, 500, 500]);
    await app.close();
    expect(lines.filter((l) => l.includes('request failed'))).toHaveLength(3);
    const text = lines.join('');
    expect(text).not.toContain(KEY);
    expect(text).not.toContain(Buffer.from(`${KEY}:`).toString('base64'));
  });
});
