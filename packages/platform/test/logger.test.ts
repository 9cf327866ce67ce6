import { createLogger } from '../src';

/** The log lines a service writes, as text, through the logger every main builds. */
function capture() {
  const chunks: string[] = [];
  const log = createLogger('test', 'info', { write: (s: string) => void chunks.push(s) });
  return { log, text: () => chunks.join('') };
}

describe('createLogger keeps credentials out of the logs', () => {
  it('redacts credential headers and token settings wherever a log line carries them', () => {
    const { log, text } = capture();
    log.error(
      {
        headers: { authorization: 'Bearer t-1', 'x-write-key': 'k-1' },
        req: { headers: { authorization: 'Bearer t-2', cookie: 's-1' } },
        request: { raw: { headers: { 'proxy-authorization': 'Basic t-5' } } },
        config: { WRITE_KEYS: 'k-3=web', API_TOKENS: 't-4=*' },
      },
      'something failed',
    );
    const logged = text();
    for (const secret of ['t-1', 'k-1', 't-2', 's-1', 'k-3', 't-4', 't-5']) expect(logged).not.toContain(secret);
    expect(logged).toContain('[redacted]');
    expect(logged).toContain('something failed');
  });

  it('logs a request as method, URL, route and id, never its headers or body', () => {
    const { log, text } = capture();
    const request = {
      id: 'req-1',
      method: 'POST',
      url: '/v1/events',
      routeOptions: { url: '/v1/events' },
      ip: '127.0.0.1',
      headers: { authorization: 'Bearer secret-token' },
      body: { writeKey: 'secret-key' },
      raw: { headers: { authorization: 'Bearer secret-token' } },
    };
    log.error({ request }, 'request failed');
    const line = JSON.parse(text()) as { request: unknown };
    expect(line.request).toEqual({
      id: 'req-1',
      method: 'POST',
      url: '/v1/events',
      route: '/v1/events',
      ip: '127.0.0.1',
    });
  });
});
