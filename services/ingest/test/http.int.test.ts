import { connect } from 'node:net';
import { deflateSync, gzipSync } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { createSandbox, readTopic, type Sandbox } from '@pstream/testkit';
import { startIngest } from '@pstream/testkit/services';

const key = { 'x-write-key': 'test-key' };
const click = { type: 'click', userId: 'u-1', target: { type: 'product', id: 'p-1' } };
type Rejected = { index: number; errors: { path: string; message: string }[] }[];
type Body = {
  accepted?: number;
  rejected?: Rejected;
  error?: { code: string; message: string; details?: { accepted?: number; rejected?: Rejected } };
};
/** What a refusal row expects, flat: the code, message and rejected items of the one error body. */
type Refusal = { code?: string; message?: string; accepted?: number; rejected?: unknown[] };
/** A refusal row as the error body `{ error: { code, message, details: { accepted, rejected } } }`. */
const errorOf = ({ code, message, accepted, rejected }: Refusal) => ({
  error: {
    ...(code !== undefined && { code }),
    ...(message !== undefined && { message }),
    ...((accepted !== undefined || rejected !== undefined) && {
      details: { ...(accepted !== undefined && { accepted }), ...(rejected !== undefined && { rejected }) },
    }),
  },
});

/** The HTTP contract of docs/events.md §3.3 on real Kafka: every bad input's status and error body. */
describe('ingest HTTP API', () => {
  jest.setTimeout(60_000);
  let box: Sandbox;
  let ingest: Awaited<ReturnType<typeof startIngest>>;
  let app: FastifyInstance;
  const post = (url: string, payload: unknown, headers: Record<string, string> = key) =>
    app.inject({
      method: 'POST',
      url,
      headers: { 'content-type': 'application/json', ...headers },
      payload: typeof payload === 'string' || Buffer.isBuffer(payload) ? payload : JSON.stringify(payload),
    });
  const body = (res: { json: () => unknown }) => res.json() as Body;

  beforeAll(async () => {
    box = await createSandbox();
    ingest = await startIngest(box.kafka, { ...box.env, RATE_LIMIT_PER_SEC: '1000', RATE_LIMIT_BURST: '1000' });
    app = ingest.app;
  });
  afterAll(async () => {
    await ingest?.close();
    await box?.cleanup();
  });

  describe('accepting', () => {
    it('puts accepted events on Kafka, keeping client eventIds and assigning missing ones', async () => {
      const res = await post('/v1/events', {
        events: [
          { ...click, eventId: 'keep-me:1' },
          { ...click, userId: 'u-assigned' },
        ],
      });
      expect(res.statusCode).toBe(202);
      expect(body(res)).toEqual({ accepted: 2, rejected: [] });
      const onTopic = await readTopic<{ eventId: string; userId: string; source: string }>(
        box.kafka,
        box.env.EVENTS_TOPIC!,
        (v) => v.some((m) => m.userId === 'u-assigned') && v.some((m) => m.eventId === 'keep-me:1'),
      );
      expect(onTopic.find((m) => m.eventId === 'keep-me:1')?.source).toBe('web');
      expect(onTopic.find((m) => m.userId === 'u-assigned')?.eventId).toMatch(/^[0-9a-f-]{36}$/);
    });

    it('accepts the valid events of a batch and names each invalid one', async () => {
      const res = await post('/v1/events', {
        events: [click, { ...click, tags: ['Bad Tag'] }, { ...click, type: 'dwell' }],
      });
      expect(res.statusCode).toBe(202);
      expect(body(res)).toEqual({
        accepted: 1,
        rejected: [
          { index: 1, errors: [{ path: 'tags.0', message: expect.stringContaining('dimension:value') }] },
          { index: 2, errors: [{ path: 'dwellMs', message: 'is required for dwell events' }] },
        ],
      });
    });

    it('answers concurrent requests each with its own 202, their records sharing sends to Kafka', async () => {
      const responses = await Promise.all(
        Array.from({ length: 40 }, (_, r) =>
          post('/v1/events', { events: Array.from({ length: 5 }, (_, i) => ({ ...click, eventId: `c-${r}-${i}` })) }),
        ),
      );
      expect(responses.map((res) => res.statusCode)).toEqual(Array(40).fill(202));
      const want = Array.from({ length: 200 }, (_, n) => `c-${Math.floor(n / 5)}-${n % 5}`);
      const onTopic = await readTopic<{ eventId: string }>(box.kafka, box.env.EVENTS_TOPIC!, (v) => {
        const ids = new Set(v.map((m) => m.eventId));
        return want.every((id) => ids.has(id));
      });
      expect(onTopic.filter((m) => m.eventId.startsWith('c-'))).toHaveLength(200);
    });

    it('accepts gzip and deflate bodies and JSON sent as text/plain', async () => {
      const payload = JSON.stringify({ events: [click, click] });
      for (const [encoding, data] of [
        ['gzip', gzipSync(payload)],
        ['deflate', deflateSync(payload)],
      ] as const) {
        const res = await post('/v1/events', data, { ...key, 'content-encoding': encoding });
        expect([res.statusCode, body(res)]).toEqual([202, { accepted: 2, rejected: [] }]);
      }
      const plain = await post('/v1/events', payload, { ...key, 'content-type': 'text/plain' });
      expect(plain.statusCode).toBe(202);
    });

    it('accepts the write key as the Basic auth username', async () => {
      const res = await post('/v1/events', click, {
        authorization: `Basic ${Buffer.from('test-key:').toString('base64')}`,
      });
      expect(res.statusCode).toBe(202);
    });
  });

  describe('refusing', () => {
    const cases: [string, () => Promise<{ statusCode: number; json: () => unknown }>, number, Refusal][] = [
      ['no write key', () => post('/v1/events', click, {}), 401, { code: 'ING_UNAUTHORIZED' }],
      [
        'an unknown write key',
        () => post('/v1/events', click, { 'x-write-key': 'nope' }),
        401,
        { code: 'ING_UNAUTHORIZED' },
      ],
      [
        'an unknown Basic auth user',
        () => post('/v1/events', click, { authorization: `Basic ${Buffer.from('nope:').toString('base64')}` }),
        401,
        { code: 'ING_UNAUTHORIZED' },
      ],
      ['a body that is not JSON', () => post('/v1/events', '{"type": cli'), 400, { code: 'ING_MALFORMED' }],
      ['an empty body', () => post('/v1/events', ''), 400, { code: 'ING_MALFORMED' }],
      [
        'a JSON array body',
        () => post('/v1/events', [click]),
        400,
        { code: 'ING_MALFORMED', message: 'the body must be an event object or { "events": [...] }' },
      ],
      [
        'events that is not an array',
        () => post('/v1/events', { events: click }),
        400,
        { code: 'ING_MALFORMED', message: 'events must be an array' },
      ],
      [
        'an empty events list',
        () => post('/v1/events', { events: [] }),
        400,
        { code: 'ING_MALFORMED', message: 'events is empty' },
      ],
      [
        '501 events',
        () => post('/v1/events', { events: Array.from({ length: 501 }, () => click) }),
        400,
        { code: 'ING_MALFORMED', message: 'at most 500 events per request, got 501' },
      ],
      [
        'a __proto__ key',
        () => post('/v1/events', '{"type":"click","__proto__":{"admin":true}}'),
        400,
        { code: 'ING_MALFORMED', message: expect.stringContaining('prototype') },
      ],
      [
        'a constructor.prototype key',
        () => post('/v1/events', '{"constructor":{"prototype":{"admin":true}}}'),
        400,
        { code: 'ING_MALFORMED', message: expect.stringContaining('prototype') },
      ],
      [
        'an XML content type',
        () => post('/v1/events', '<event/>', { ...key, 'content-type': 'application/xml' }),
        415,
        { code: 'ING_UNSUPPORTED_MEDIA_TYPE' },
      ],
      [
        'a brotli content encoding',
        () => post('/v1/events', 'xx', { ...key, 'content-encoding': 'br' }),
        415,
        { code: 'ING_UNSUPPORTED_MEDIA_TYPE', message: expect.stringContaining('"br"') },
      ],
      [
        'a corrupt gzip body',
        () => post('/v1/events', Buffer.from('not gzip at all'), { ...key, 'content-encoding': 'gzip' }),
        400,
        { code: 'ING_MALFORMED' },
      ],
      [
        'a body over 512 KB',
        () =>
          post('/v1/events', {
            events: Array.from({ length: 400 }, () => ({ ...click, context: { device: { pad: 'x'.repeat(1400) } } })),
          }),
        413,
        { code: 'ING_TOO_LARGE' },
      ],
      [
        'a gzip body that inflates past 512 KB',
        () =>
          post(
            '/v1/events',
            gzipSync(JSON.stringify({ ...click, context: { device: { pad: ' '.repeat(600_000) } } })),
            { ...key, 'content-encoding': 'gzip' },
          ),
        413,
        { code: 'ING_TOO_LARGE' },
      ],
      [
        'a single event over 32 KB',
        () => post('/v1/events', { ...click, context: { device: { pad: 'x'.repeat(33 * 1024) } } }),
        413,
        { code: 'ING_TOO_LARGE', rejected: [{ index: 0, errors: [{ path: '', message: 'is larger than 32 KB' }] }] },
      ],
      [
        'a batch where every event is invalid',
        () =>
          post('/v1/events', {
            events: [
              { ...click, userId: undefined },
              { ...click, occurredAt: new Date(Date.now() + 25 * 3600_000).toISOString() },
            ],
          }),
        400,
        {
          code: 'ING_NOTHING_ACCEPTED',
          accepted: 0,
          rejected: [
            { index: 0, errors: [{ path: 'userId', message: 'userId or anonymousId is required' }] },
            { index: 1, errors: [{ path: 'occurredAt', message: 'is more than 24 h in the future' }] },
          ],
        },
      ],
      [
        'an event whose only ids are placeholders',
        () => post('/v1/events', { ...click, userId: 'anonymous', anonymousId: '0' }),
        400,
        {
          code: 'ING_NOTHING_ACCEPTED',
          rejected: [{ index: 0, errors: [{ path: 'userId', message: expect.stringContaining('placeholder') }] }],
        },
      ],
      [
        'an unknown field',
        () => post('/v1/events', { ...click, dwel_ms: 5 }),
        400,
        {
          code: 'ING_NOTHING_ACCEPTED',
          rejected: [{ index: 0, errors: [{ path: '', message: expect.stringContaining('dwel_ms') }] }],
        },
      ],
      [
        'a purchase without currency',
        () => post('/v1/events', { ...click, type: 'purchase', amount: 5 }),
        400,
        { rejected: [{ index: 0, errors: [{ path: 'currency', message: 'is required for purchase events' }] }] },
      ],
      [
        'an identify with a placeholder userId',
        () => post('/v1/identify', { userId: 'null', traits: { city: 'Hangzhou' } }),
        400,
        {
          code: 'ING_NOTHING_ACCEPTED',
          rejected: [{ index: 0, errors: [{ path: 'userId', message: expect.stringContaining('placeholder') }] }],
        },
      ],
      [
        'an identify with a nested trait and a bad birth year',
        () => post('/v1/identify', { userId: 'u-9', traits: { company: { name: 'acme' }, birthYear: '1990' } }),
        400,
        {
          rejected: [
            {
              index: 0,
              errors: [
                { path: 'traits.company', message: expect.stringContaining('string') },
                { path: 'traits.birthYear', message: expect.stringContaining('number') },
              ],
            },
          ],
        },
      ],
      [
        'an identify with 33 custom traits',
        () =>
          post('/v1/identify', {
            userId: 'u-9',
            traits: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`t${i}`, i])),
          }),
        400,
        {
          rejected: [{ index: 0, errors: [{ path: 'traits', message: expect.stringContaining('at most 32 traits') }] }],
        },
      ],
      [
        'a Segment track without a target',
        () => post('/v1/track', { event: 'Product Viewed', userId: 'u-1', properties: { name: 'x' } }),
        400,
        { rejected: [{ index: 0, errors: [{ path: 'properties.product_id', message: expect.any(String) }] }] },
      ],
      [
        'a Segment alias onto a placeholder',
        () => post('/v1/alias', { userId: 'u-1', previousId: 'anonymous' }),
        400,
        {
          rejected: [{ index: 0, errors: [{ path: 'previousId', message: expect.stringContaining('never merges') }] }],
        },
      ],
      [
        'a Segment batch that is not a list',
        () => post('/v1/batch', { batch: {} }),
        400,
        { code: 'ING_MALFORMED', message: 'the body must be { "batch": [...] }' },
      ],
      [
        'a Segment batch of calls of no Segment type',
        () => post('/v1/batch', { batch: [{ type: 'visit', userId: 'u-1' }] }),
        400,
        {
          rejected: [
            {
              index: 0,
              errors: [
                {
                  path: 'type',
                  message: expect.stringContaining('send one of track, identify, alias, page, screen, group'),
                },
              ],
            },
          ],
        },
      ],
    ];
    it.each(cases)('refuses %s', async (_name, send, status, expected) => {
      const res = await send();
      expect(res.statusCode).toBe(status);
      expect(body(res)).toMatchObject(errorOf(expected));
    });

    it('rejects an oversized event inside a batch but accepts its neighbours', async () => {
      const res = await post('/v1/events', {
        events: [click, { ...click, context: { device: { pad: 'x'.repeat(33 * 1024) } } }],
      });
      expect([res.statusCode, body(res)]).toEqual([
        202,
        { accepted: 1, rejected: [{ index: 1, errors: [{ path: '', message: 'is larger than 32 KB' }] }] },
      ]);
    });

    it('offers no way to read with a write key', async () => {
      for (const url of ['/v1/events', '/v1/identify']) {
        const res = await app.inject({ method: 'GET', url, headers: key });
        expect([res.statusCode, body(res).error?.code, res.headers.allow]).toEqual([
          405,
          'ING_METHOD_NOT_ALLOWED',
          'POST',
        ]);
      }
      const res = await app.inject({ method: 'GET', url: '/v1/profiles/u-1', headers: key });
      expect([res.statusCode, body(res).error?.code]).toEqual([404, 'ING_NOT_FOUND']);
    });
  });

  describe('identify', () => {
    it('publishes traits keyed by userId and drops a placeholder anonymousId instead of merging on it', async () => {
      const res = await post('/v1/identify', {
        userId: 'u-id-1',
        anonymousId: 'anonymous',
        eventId: 'id-1',
        traits: { gender: 'female', birthYear: 1990, city: 'Hangzhou', plan: 'gold' },
      });
      expect([res.statusCode, body(res)]).toEqual([202, { accepted: 1, rejected: [] }]);
      const linked = await post('/v1/identify', { userId: 'u-id-2', anonymousId: 'dev-42', eventId: 'id-2' });
      expect(linked.statusCode).toBe(202);
      const onTopic = await readTopic<Record<string, unknown>>(
        box.kafka,
        box.env.EVENTS_TOPIC!,
        (v) => v.some((m) => m.eventId === 'id-1') && v.some((m) => m.eventId === 'id-2'),
      );
      const first = onTopic.find((m) => m.eventId === 'id-1')!;
      expect(first).toMatchObject({
        kind: 'identify',
        userId: 'u-id-1',
        profileKey: 'u-id-1',
        traits: { gender: 'female', birthYear: 1990, city: 'Hangzhou', plan: 'gold' },
      });
      expect(first).not.toHaveProperty('anonymousId');
      expect(onTopic.find((m) => m.eventId === 'id-2')).toMatchObject({
        kind: 'identify',
        userId: 'u-id-2',
        anonymousId: 'dev-42',
        traits: {},
      });
    });
  });

  describe('timeouts and rate limits', () => {
    it('answers 408 when a request body does not arrive in time', async () => {
      const slow = await startIngest(box.kafka, { ...box.env, REQUEST_TIMEOUT_MS: '500' });
      try {
        await slow.app.listen({ host: '127.0.0.1', port: 0 });
        const { port } = slow.app.server.address() as { port: number };
        const reply = await new Promise<string>((resolve, reject) => {
          const socket = connect(port, '127.0.0.1', () => {
            socket.write(
              'POST /v1/events HTTP/1.1\r\nHost: x\r\nX-Write-Key: test-key\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"type":',
            );
          });
          let data = '';
          socket.on('data', (d) => (data += d.toString()));
          socket.on('close', () => resolve(data));
          socket.on('error', reject);
        });
        expect(reply).toMatch(/^HTTP\/1\.1 408 Request Timeout/);
        expect(JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4))).toMatchObject({
          error: { code: 'ING_REQUEST_TIMEOUT' },
        });
      } finally {
        await slow.close();
      }
    });

    it('answers 429 with Retry-After past a write key’s rate, leaving other keys alone', async () => {
      // Its own Redis prefix: the counters are shared by every instance on a prefix, and the other
      // instance of this file (1000 per second) counts under the sandbox's.
      const limited = await startIngest(box.kafka, {
        ...box.env,
        REDIS_PREFIX: `${box.env.REDIS_PREFIX}:limited`,
        RATE_LIMIT_PER_SEC: '1',
        RATE_LIMIT_BURST: '2',
      });
      try {
        const send = (k: string) =>
          limited.app.inject({ method: 'POST', url: '/v1/events', headers: { 'x-write-key': k }, payload: click });
        expect((await send('test-key')).statusCode).toBe(202);
        expect((await send('test-key')).statusCode).toBe(202);
        const third = await send('test-key');
        expect(third.statusCode).toBe(429);
        // the window is BURST / PER_SEC = 2 s; Retry-After is what is left of it, rounded up
        expect(['1', '2']).toContain(third.headers['retry-after']);
        expect(third.json()).toMatchObject({ error: { code: 'ING_RATE_LIMITED' } });
        expect((await send('other-key')).statusCode).toBe(202);
      } finally {
        await limited.close();
      }
    });
  });
});
