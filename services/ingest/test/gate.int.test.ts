import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSandbox, readTopic, type Sandbox } from '@pstream/testkit';
import { startIngest } from '@pstream/testkit/services';

type Answer = { status: number; code?: string };
const noRoute = (a: Answer) =>
  (a.status === 404 && a.code === 'ING_NOT_FOUND') || (a.status === 405 && a.code === 'ING_METHOD_NOT_ALLOWED');
const click = (eventId: string) =>
  JSON.stringify({ eventId, type: 'click', userId: 'u-gate', target: { type: 'product', id: 'p' } });
const segmentTrack = (messageId: string) =>
  JSON.stringify({ messageId, type: 'track', event: 'click', userId: 'u-gate', properties: { product_id: 'p' } });

/**
 * Spellings of the write paths as a client may send them, raw on the wire (no client-side
 * normalisation). Those that route reach a write handler; the rest match no route at all.
 */
const ROUTED = [
  ['/%761/events', click],
  ['/%76%31/%65vents', click],
  ['/v1/%65vents', click],
  ['/v1/events?writeKey=x', click],
  ['/v1/events?', click],
  ['/%76%31/%74%72%61%63%6b', segmentTrack],
  ['/v1/%69dentify', () => JSON.stringify({ userId: 'u-gate', traits: { city: 'x' } })],
  ['/v1/%62atch', (id: string) => `{"batch":[${segmentTrack(id)}]}`],
] as const;
const UNROUTED = [
  '//v1/events',
  '/v1//events',
  '/V1/events',
  '/v1/EVENTS',
  '/v1/events/',
  '/v1%2Fevents',
  '/%2Fv1/events',
  '/v1/events%2F',
  '/./v1/events',
  '/v1/../v1/events',
];

/** The write-key / CORS / rate-limit gate belongs to the write routes, however their path is spelled (§3.3). */
describe('write gate on every spelling of a write path', () => {
  jest.setTimeout(60_000);
  let box: Sandbox;
  let ingest: Awaited<ReturnType<typeof startIngest>>;
  let port: number;
  /** A POST with `path` sent byte for byte as given. */
  const post = (path: string, body: string, headers: Record<string, string> = {}) =>
    new Promise<Answer>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, method: 'POST', path, headers: { 'content-type': 'text/plain', ...headers } },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () =>
            resolve({
              status: res.statusCode!,
              code: text.startsWith('{"error"')
                ? (JSON.parse(text) as { error: { code: string } }).error.code
                : undefined,
            }),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  beforeAll(async () => {
    box = await createSandbox(1);
    ingest = await startIngest(box.kafka, {
      ...box.env,
      RATE_LIMIT_PER_SEC: '1',
      RATE_LIMIT_BURST: '30',
      CORS_ORIGINS_BY_KEY: 'other-key=https://shop.example',
    });
    await ingest.app.listen({ host: '127.0.0.1', port: 0 });
    port = (ingest.app.server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await ingest?.close();
    await box?.cleanup();
  });

  it('refuses a missing, wrong or in-body-only wrong key (401) and a disallowed origin (403) on every routed spelling', async () => {
    for (const [path, make] of ROUTED) {
      const answers = {
        none: await post(path, make(`bad-none-${path}`)),
        wrong: await post(path, make(`bad-wrong-${path}`), { 'x-write-key': 'nope' }),
        basicWrong: await post(path, make(`bad-basic-${path}`), {
          authorization: `Basic ${Buffer.from('nope:').toString('base64')}`,
        }),
        origin: await post(path, make(`bad-origin-${path}`), {
          'x-write-key': 'test-key',
          origin: 'https://evil.example',
        }),
        originOfOtherKey: await post(path, make(`bad-other-${path}`), {
          'x-write-key': 'test-key',
          origin: 'https://shop.example',
        }),
      };
      expect({ path, answers }).toEqual({
        path,
        answers: {
          none: { status: 401, code: 'ING_UNAUTHORIZED' },
          wrong: { status: 401, code: 'ING_UNAUTHORIZED' },
          basicWrong: { status: 401, code: 'ING_UNAUTHORIZED' },
          origin: { status: 403, code: 'ING_ORIGIN_NOT_ALLOWED' },
          originOfOtherKey: { status: 403, code: 'ING_ORIGIN_NOT_ALLOWED' },
        },
      });
    }
  });

  it('lets no unrouted spelling reach a handler, with or without a key', async () => {
    for (const path of UNROUTED) {
      const keyless = await post(path, click('bad-unrouted'));
      const keyed = await post(path, click('bad-unrouted'), { 'x-write-key': 'test-key' });
      // 405 where only the CORS preflight route (OPTIONS /v1/*) matches the path.
      expect({ path, keyless: noRoute(keyless), keyed: noRoute(keyed) }).toEqual({ path, keyless: true, keyed: true });
    }
  });

  it('accepts each routed spelling with the key, and writes only those events', async () => {
    const statuses = [];
    for (const [path, make] of ROUTED)
      statuses.push((await post(path, make(`good-${statuses.length}`), { 'x-write-key': 'test-key' })).status);
    expect(statuses).toEqual(Array(ROUTED.length).fill(202));
    // Seven carry a client id; the native identify gets one from the server.
    const onTopic = await readTopic<{ eventId: string; source: string }>(
      box.kafka,
      box.env.EVENTS_TOPIC!,
      (v) => v.length >= ROUTED.length,
    );
    expect(onTopic).toHaveLength(ROUTED.length);
    expect(onTopic.filter((m) => m.eventId.startsWith('good-'))).toHaveLength(ROUTED.length - 1);
    expect(new Set(onTopic.map((m) => m.source))).toEqual(new Set(['web']));
  });

  it('reads the Basic scheme name in any case', async () => {
    for (const scheme of ['Basic', 'basic', 'BASIC', 'bAsIc']) {
      const answer = await post('/v1/events', '{}', {
        authorization: `${scheme} ${Buffer.from('test-key:').toString('base64')}`,
      });
      // past the gate: the empty body is what is refused
      expect({ scheme, status: answer.status, code: answer.code }).toEqual({
        scheme,
        status: 400,
        code: 'ING_NOTHING_ACCEPTED',
      });
    }
  });

  it('counts every spelling against the key’s one rate limit: 429 with Retry-After once it is spent', async () => {
    // The burst (30) is partly spent by the test above; spelling-mixed requests spend the rest.
    const answers: Answer[] = [];
    for (let i = 0; i < 40; i++)
      answers.push(await post(ROUTED[i % ROUTED.length]![0], '{}', { 'x-write-key': 'other-key' }));
    expect(answers.slice(0, 30).every((a) => a.status === 400)).toBe(true);
    expect(answers.slice(30)).toEqual(Array(10).fill({ status: 429, code: 'ING_RATE_LIMITED' }));
  });
});
