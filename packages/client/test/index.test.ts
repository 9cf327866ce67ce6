import { createQueryClient, QueryApiError } from '../src/index';

/*
 * The paths a running query API does not take (test/client.int.test.ts covers those it does): an
 * answer from something in front of it that is not the API's error body, and what every request
 * carries. The transport is a stand-in fetch, since no real proxy is at hand.
 */
describe('createQueryClient', () => {
  const seen: Request[] = [];
  const answering = (response: () => Response) =>
    createQueryClient({
      baseUrl: 'http://query.test:8081/',
      token: 't-1',
      headers: { 'x-request-id': 'mine' },
      fetch: async (request) => {
        seen.push(request);
        return response();
      },
    });

  it('a non-JSON error answer (a proxy’s page) rejects with code HTTP_<status> and its text', async () => {
    const client = answering(
      () => new Response('<html>bad gateway</html>', { status: 502, headers: { 'content-type': 'text/html' } }),
    );
    const err = (await client.profile('u-1').catch((e: unknown) => e)) as QueryApiError;
    expect(err).toBeInstanceOf(QueryApiError);
    expect({ status: err.status, code: err.code, body: err.body }).toEqual({
      status: 502,
      code: 'HTTP_502',
      body: { error: { code: 'HTTP_502', message: '<html>bad gateway</html>' } },
    });
  });

  it('a JSON error answer that is not the error body still rejects with HTTP_<status>', async () => {
    const client = answering(() =>
      Response.json({ message: 'rate limited upstream' }, { status: 429, statusText: 'Too Many Requests' }),
    );
    const err = (await client.similar('u-1').catch((e: unknown) => e)) as QueryApiError;
    expect({ code: err.code, message: err.body.error.message }).toEqual({
      code: 'HTTP_429',
      message: 'Too Many Requests',
    });
  });

  it('sends the bearer token and the caller’s headers, with path and query encoded', async () => {
    const client = answering(() => Response.json({ interests: [], computedAt: '2026-12-01T00:00:00.000Z' }));
    await client.interests('a b/c', { dimension: 'category', limit: 5 });
    const request = seen[seen.length - 1]!;
    expect(request.url).toBe('http://query.test:8081/v1/profiles/a%20b%2Fc/interests?dimension=category&limit=5');
    expect(request.headers.get('authorization')).toBe('Bearer t-1');
    expect(request.headers.get('x-request-id')).toBe('mine');
  });
});
