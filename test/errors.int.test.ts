/**
 * One error body on every route of every service, Fastify's own errors included, and one request
 * id per request, echoed in X-Request-Id and on the log line of the error.
 */
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { errorBodySchema } from '@pstream/http';
import { buildApp as buildIngest } from '@pstream/ingest/app';
import { loadConfig as ingestConfig } from '@pstream/ingest/config';
import { KafkaPublisher } from '@pstream/ingest/publisher';
import { createKafka, createMetrics, createPool, createRedis, type Pool, type Redis } from '@pstream/platform';
import { migrate } from '@pstream/profile-store';
import { buildApp as buildQuery } from '@pstream/query-api/app';
import { loadConfig as queryConfig } from '@pstream/query-api/config';
import { buildApp as buildScorer } from '@pstream/scorer/app';
import { buildApp as buildSegmenter } from '@pstream/segmenter/app';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import pino from 'pino';
import { createSandbox, type Sandbox, silentLog } from '@pstream/testkit';

type Case = {
  name: string;
  method: string;
  url: string;
  headers?: Record<string, string>;
  payload?: string;
  status: number;
  code: string;
  allow?: string;
};

/** Asserts the one error body: exactly `{ error: { code, message, details? } }`, and a request id. */
function expectErrorBody(res: LightMyRequestResponse, want: Case): void {
  const body = res.json() as Record<string, unknown>;
  expect({
    case: want.name,
    status: res.statusCode,
    code: (body.error as { code?: string } | undefined)?.code,
  }).toEqual({ case: want.name, status: want.status, code: want.code });
  expect(Object.keys(body)).toEqual(['error']);
  expect(errorBodySchema.safeParse(body).success).toBe(true);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(res.headers['x-request-id']).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
  if (want.allow !== undefined) expect(res.headers.allow).toBe(want.allow);
}

describe('every error of every service', () => {
  let box: Sandbox;
  let redis: Redis;
  let pool: Pool;
  const apps = new Map<string, FastifyInstance>();
  const lines: Record<string, unknown>[] = [];
  // A logger that keeps its lines, to find the request id on them.
  const log = pino(
    { level: 'info' },
    { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  const token = { authorization: 'Bearer t-read' };

  beforeAll(async () => {
    box = await createSandbox(1);
    redis = createRedis({ REDIS_URL: process.env.REDIS_URL! }, 'test-errors');
    pool = createPool(process.env.DATABASE_URL!, box.env.PG_SCHEMA!, 'test-errors', 2);
    await migrate(pool, box.env.PG_SCHEMA!);
    const ic = ingestConfig({ ...box.env, WRITE_KEYS: 'w-key=web' });
    const publisher = new KafkaPublisher({
      kafka: createKafka({ brokers: ic.KAFKA_BROKERS, clientId: 'test-errors', log: silentLog }),
      topic: ic.EVENTS_TOPIC,
      log: silentLog,
      timeoutMs: 5000,
      breakerMs: 1000,
    });
    apps.set('ingest', await buildIngest(ic, { log, publisher, checks: [], metrics: createMetrics('ingest') }));
    const qc = queryConfig({ ...box.env, API_TOKENS: 't-read=profiles:read,t-none=ops:read' });
    apps.set('query-api', await buildQuery(qc, { log, redis, pool, checks: [], metrics: createMetrics('query-api') }));
    apps.set('scorer', await buildScorer({ log, checks: [], metrics: createMetrics('scorer') }));
    apps.set('segmenter', await buildSegmenter({ log, checks: [], metrics: createMetrics('segmenter') }));
    for (const app of apps.values()) await app.ready();
  }, 60_000);

  afterAll(async () => {
    for (const app of apps.values()) await app.close();
    redis?.disconnect();
    await pool?.end();
    await box?.cleanup();
  });

  const framework = (prefix: string, service: string): Case[] => [
    {
      name: `${service}: no such route`,
      method: 'GET',
      url: '/no/such/route',
      status: 404,
      code: `${prefix}_NOT_FOUND`,
    },
    {
      name: `${service}: a method the path does not have`,
      method: 'DELETE',
      url: '/healthz',
      status: 405,
      code: `${prefix}_METHOD_NOT_ALLOWED`,
      allow: 'GET, HEAD',
    },
    {
      name: `${service}: an undecodable URL`,
      method: 'GET',
      url: '/healthz/%zz',
      status: 400,
      code: `${prefix}_MALFORMED`,
    },
  ];
  const cases: [string, Case][] = [
    ...framework('ING', 'ingest').map((c) => ['ingest', c] as [string, Case]),
    ...framework('QRY', 'query-api').map((c) => ['query-api', c] as [string, Case]),
    ...framework('SCR', 'scorer').map((c) => ['scorer', c] as [string, Case]),
    ...framework('SEG', 'segmenter').map((c) => ['segmenter', c] as [string, Case]),
    [
      'ingest',
      {
        name: 'ingest: no write key',
        method: 'POST',
        url: '/v1/events',
        payload: '{}',
        headers: { 'content-type': 'application/json' },
        status: 401,
        code: 'ING_UNAUTHORIZED',
      },
    ],
    [
      'ingest',
      {
        name: 'ingest: a content type it does not read',
        method: 'POST',
        url: '/v1/events',
        payload: '<e/>',
        headers: { 'content-type': 'application/xml', 'x-write-key': 'w-key' },
        status: 415,
        code: 'ING_UNSUPPORTED_MEDIA_TYPE',
      },
    ],
    [
      'ingest',
      {
        name: 'ingest: a body over the limit',
        method: 'POST',
        url: '/v1/events',
        payload: `{"p":"${'x'.repeat(600_000)}"}`,
        headers: { 'content-type': 'application/json', 'x-write-key': 'w-key' },
        status: 413,
        code: 'ING_TOO_LARGE',
      },
    ],
    [
      'ingest',
      {
        name: 'ingest: a body that is not JSON',
        method: 'POST',
        url: '/v1/events',
        payload: '{"a":',
        headers: { 'content-type': 'application/json', 'x-write-key': 'w-key' },
        status: 400,
        code: 'ING_MALFORMED',
      },
    ],
    [
      'ingest',
      {
        name: 'ingest: nothing valid',
        method: 'POST',
        url: '/v1/events',
        payload: '{"type":"click"}',
        headers: { 'content-type': 'application/json', 'x-write-key': 'w-key' },
        status: 400,
        code: 'ING_NOTHING_ACCEPTED',
      },
    ],
    [
      'query-api',
      { name: 'query-api: no token', method: 'GET', url: '/v1/profiles/u-1', status: 401, code: 'QRY_UNAUTHORIZED' },
    ],
    [
      'query-api',
      {
        name: 'query-api: a token without the scope',
        method: 'GET',
        url: '/v1/profiles/u-1',
        headers: { authorization: 'Bearer t-none' },
        status: 403,
        code: 'QRY_FORBIDDEN',
      },
    ],
    [
      'query-api',
      {
        name: 'query-api: an unknown profile',
        method: 'GET',
        url: '/v1/profiles/nobody',
        headers: token,
        status: 404,
        code: 'QRY_PROFILE_NOT_FOUND',
      },
    ],
    [
      'query-api',
      {
        name: 'query-api: a query out of range',
        method: 'GET',
        url: '/v1/profiles/u-1/interests?limit=0',
        headers: token,
        status: 400,
        code: 'QRY_INVALID_REQUEST',
      },
    ],
    [
      'query-api',
      {
        name: 'query-api: an id over 128 characters',
        method: 'GET',
        url: `/v1/profiles/${'x'.repeat(129)}`,
        headers: token,
        status: 400,
        code: 'QRY_INVALID_REQUEST',
      },
    ],
    [
      'query-api',
      {
        name: 'query-api: a path parameter over the router limit',
        method: 'GET',
        url: `/v1/profiles/${'x'.repeat(1600)}`,
        headers: token,
        status: 414,
        code: 'QRY_URI_TOO_LONG',
      },
    ],
    [
      'query-api',
      {
        name: 'query-api: POST on the profile route (GET to read, DELETE to erase)',
        method: 'POST',
        url: '/v1/profiles/u-1',
        payload: '{}',
        headers: { ...token, 'content-type': 'application/json' },
        status: 405,
        code: 'QRY_METHOD_NOT_ALLOWED',
        allow: 'GET, HEAD, DELETE',
      },
    ],
  ];

  it.each(cases.map(([service, c]) => [c.name, service, c] as const))(
    '%s: the one error body',
    async (_name, service, c) => {
      const app = apps.get(service)!;
      const res = await app.inject({
        method: c.method as 'GET',
        url: c.url,
        headers: c.headers ?? {},
        ...(c.payload !== undefined && { payload: c.payload }),
      });
      expectErrorBody(res, c);
    },
  );

  it('names each invalid field of a refused query in details', async () => {
    const res = await apps
      .get('query-api')!
      .inject({ method: 'GET', url: '/v1/profiles/u-1/interests?limit=0&dimension=Bad', headers: token });
    expect(res.json()).toEqual({
      error: {
        code: 'QRY_INVALID_REQUEST',
        message: expect.any(String),
        details: expect.arrayContaining([
          { path: 'querystring.limit', message: expect.any(String) },
          { path: 'querystring.dimension', message: expect.stringContaining('tag dimension') },
        ]),
      },
    });
  });

  it('echoes a plain client request id, replaces any other, and logs the refusal under it', async () => {
    const app = apps.get('query-api')!;
    const given = await app.inject({
      method: 'GET',
      url: '/v1/profiles/u-1',
      headers: { 'x-request-id': 'client-id.42' },
    });
    expect(given.headers['x-request-id']).toBe('client-id.42');
    expect(lines.some((l) => l.requestId === 'client-id.42' && l.code === 'QRY_UNAUTHORIZED' && l.status === 401)).toBe(
      true,
    );
    const bad = await app.inject({
      method: 'GET',
      url: '/healthz',
      headers: { 'x-request-id': 'has spaces\tand tabs' },
    });
    expect(bad.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const a = await app.inject({ method: 'GET', url: '/healthz' });
    const b = await app.inject({ method: 'GET', url: '/healthz' });
    expect(a.headers['x-request-id']).not.toBe(b.headers['x-request-id']);
  });

  it('answers a request too broken to reach a route with the one error body on the socket', async () => {
    const app = apps.get('scorer')!;
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => socket.write('NOT HTTP AT ALL\r\n\r\n'));
      let data = '';
      socket.on('data', (chunk) => (data += chunk.toString()));
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
    });
    expect(reply).toMatch(/^HTTP\/1\.1 400 /);
    expect(reply).toMatch(/\r\nX-Request-Id: [0-9a-f-]{36}\r\n/);
    expect(JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4))).toEqual({
      error: { code: 'SCR_MALFORMED', message: 'malformed HTTP request' },
    });
  });
});
