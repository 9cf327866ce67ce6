import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { createMetrics } from '@pstream/platform';
import { buildApp as buildQuery } from '@pstream/query-api/app';
import { loadConfig as queryConfig } from '@pstream/query-api/config';
import { buildApp as buildScorer } from '@pstream/scorer/app';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { silentLog, waitFor } from '@pstream/testkit';
import { type StoreSandbox, storeSandbox } from '@pstream/testkit/services';

type Refusal = { status: number; code?: string; details?: unknown };
const auth = { authorization: 'Bearer t-all', 'content-type': 'application/json' };

/** Sends a request without finishing its body and returns what the server wrote before closing. */
function unfinished(port: number, head: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(head));
    let data = '';
    socket.on('data', (d) => (data += d.toString()));
    socket.on('close', () => resolve(data));
    socket.on('error', reject);
  });
}

/**
 * Every query-API input is checked like an event id before it reaches a store (docs/api.md): NUL,
 * control characters and lone surrogates in path ids, query values, cursors and bodies, and rules
 * nested far too deep, are a 400 naming the field, never a 500; a request that never finishes
 * arriving is a 408.
 */
describe('query API inputs no store can hold', () => {
  jest.setTimeout(60_000);
  let store: StoreSandbox;
  let app: FastifyInstance;
  let audienceId: string;
  const send = async (method: 'GET' | 'POST', url: string, payload?: unknown): Promise<Refusal> => {
    const res = await app.inject({
      method,
      url,
      headers: auth,
      ...(payload !== undefined && { payload: typeof payload === 'string' ? payload : JSON.stringify(payload) }),
    });
    const body = res.json() as { error?: { code: string; details?: unknown } };
    return { status: res.statusCode, code: body.error?.code, details: body.error?.details };
  };

  beforeAll(async () => {
    store = await storeSandbox('test-query-inputs');
    const config = queryConfig({
      ...store.box.env,
      API_TOKENS: 't-all=*',
      REQUEST_TIMEOUT_MS: '500',
      PREVIEW_CONCURRENCY: '1',
      PREVIEW_STATEMENT_TIMEOUT_MS: '60000',
    });
    app = await buildQuery(config, {
      log: silentLog,
      redis: store.redis,
      pool: store.pool,
      checks: [],
      metrics: createMetrics('query-api'),
    });
    const saved = await app.inject({
      method: 'POST',
      url: '/v1/audiences',
      headers: auth,
      payload: JSON.stringify({ name: 'inputs', rule: { stage: { in: ['active'] } } }),
    });
    expect(saved.statusCode).toBe(201);
    audienceId = (saved.json() as { id: string }).id;
  });
  afterAll(async () => {
    await app?.close();
    await store?.close();
  });

  it('refuses NUL and lone surrogates in path ids, query values, cursors, rule values and names', async () => {
    const invalid = (path: string) => ({
      status: 400,
      code: 'QRY_INVALID_REQUEST',
      details: [{ path, message: expect.any(String) }],
    });
    const cases: [string, Promise<Refusal>, Refusal][] = [
      ['profile id', send('GET', '/v1/profiles/x%00/similar'), invalid('params.id')],
      ['interests id', send('GET', '/v1/profiles/x%01y/interests'), invalid('params.id')],
      [
        'overlap with',
        send('GET', '/v1/targets/shop/s-1/followers/overlap?with=shop:%00'),
        invalid('querystring.with'),
      ],
      [
        'cursor decoding to NUL',
        send('GET', `/v1/audiences/${audienceId}/members?cursor=${Buffer.from('\0').toString('base64url')}`),
        { status: 400, code: 'QRY_INVALID_CURSOR', details: undefined },
      ],
      [
        'rule string value',
        send('POST', '/v1/audiences/preview', { rule: { trait: { name: 'city', op: 'eq', value: 'a\u0000b' } } }),
        invalid('body.rule.trait.value'),
      ],
      [
        'rule lone surrogate',
        send('POST', '/v1/audiences/preview', {
          rule: { any: [{ trait: { name: 'city', op: 'eq', value: 'x\ud800' } }] },
        }),
        invalid('body.rule.any.0.trait.value'),
      ],
      [
        'audience name',
        send('POST', '/v1/audiences', { name: 'x\ud800', rule: { stage: { in: ['active'] } } }),
        invalid('body.name'),
      ],
      [
        'audience name NUL',
        send('POST', '/v1/audiences', { name: 'a\u0000', rule: { stage: { in: ['active'] } } }),
        invalid('body.name'),
      ],
    ];
    for (const [name, answer, want] of cases) expect({ name, ...(await answer) }).toEqual({ name, ...want });
  });

  it('answers 404 for a missing /merchant/assets file', async () => {
    for (const url of ['/merchant/assets/missing.js', '/merchant/assets/merchant.js.map', '/merchant/assets/']) {
      const res = await app.inject({ method: 'GET', url });
      expect({ url, status: res.statusCode, code: (res.json() as { error: { code: string } }).error.code }).toEqual({
        url,
        status: 404,
        code: 'QRY_NOT_FOUND',
      });
    }
    expect((await app.inject({ method: 'GET', url: '/merchant/assets/merchant.js' })).statusCode).toBe(200);
  });

  it('sends /merchant and /ops with a CSP that forbids framing, and nosniff on their assets', async () => {
    for (const url of ['/merchant/shop/s-1', '/ops']) {
      const res = await app.inject({ method: 'GET', url });
      expect({ url, status: res.statusCode, nosniff: res.headers['x-content-type-options'] }).toEqual({
        url,
        status: 200,
        nosniff: 'nosniff',
      });
      expect(res.headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
      expect(res.headers['content-security-policy']).toMatch(/default-src 'self'/);
    }
    for (const url of ['/merchant/assets/merchant.js', '/ops/assets/ops.js', '/ops/assets/uplot/uPlot.iife.min.js']) {
      const res = await app.inject({ method: 'GET', url });
      expect({ url, status: res.statusCode, nosniff: res.headers['x-content-type-options'] }).toEqual({
        url,
        status: 200,
        nosniff: 'nosniff',
      });
    }
  });

  it('refuses a rule nested 1 000 and 10 000 deep with a 400, not a 500', async () => {
    for (const depth of [1000, 10_000]) {
      // Written as text: JSON.stringify itself recurses.
      const answer = await send(
        'POST',
        '/v1/audiences/preview',
        `{"rule":${'{"not":'.repeat(depth)}{"stage":{"in":["active"]}}${'}'.repeat(depth)}}`,
      );
      expect({ depth, status: answer.status, code: answer.code }).toEqual({
        depth,
        status: 400,
        code: 'QRY_INVALID_REQUEST',
      });
      expect(JSON.stringify(answer.details)).toMatch(/nested deeper than 32 levels/);
    }
    // Within the JSON limit, the rule's own depth limit still names itself.
    let rule: unknown = { stage: { in: ['active'] } };
    for (let i = 0; i < 10; i++) rule = { not: rule };
    expect(await send('POST', '/v1/audiences/preview', { rule })).toMatchObject({
      status: 400,
      code: 'QRY_INVALID_REQUEST',
    });
  });

  it('refuses a rule whose did leaves cover more than 1 460 days in all, naming the rule', async () => {
    const rule = {
      any: Array.from({ length: 5 }, (_, i) => ({
        did: { type: 'purchase', tag: `category:c${i}`, atLeast: 1, inLastDays: 365 },
      })),
    };
    const refusal = {
      status: 400,
      code: 'QRY_INVALID_REQUEST',
      details: [
        {
          path: 'body.rule',
          message: "the rule's did leaves cover 1825 days in all (the sum of their inLastDays); at most 1460",
        },
      ],
    };
    expect(await send('POST', '/v1/audiences/preview', { rule })).toEqual(refusal);
    expect(await send('POST', '/v1/audiences', { name: 'costly', rule })).toEqual(refusal);
    expect(await send('POST', '/v1/audiences/preview', { rule: { any: rule.any.slice(0, 4) } })).toMatchObject({
      status: 200,
    });
  });

  it('answers 429 QRY_AUDIENCES_BUSY with Retry-After past PREVIEW_CONCURRENCY evaluations at once', async () => {
    // Locks on every table of the schema hold the first preview mid-evaluation.
    const locker = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      const schema = store.box.env.PG_SCHEMA!;
      const { rows: tables } = await locker.query<{ name: string }>(
        "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE'",
        [schema],
      );
      await locker.query(
        `LOCK TABLE ${tables.map((t) => `"${schema}"."${t.name}"`).join(', ')} IN ACCESS EXCLUSIVE MODE`,
      );
      const first = app
        .inject({
          method: 'POST',
          url: '/v1/audiences/preview',
          headers: auth,
          payload: JSON.stringify({ rule: { not: { stage: { in: ['churned'] } } } }),
        })
        .then((res) => res); // then() sends it
      await waitFor('the first preview to wait on the lock', async () => {
        const { rows } = await locker.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name = 'test-query-inputs'",
        );
        return rows[0]!.n > 0 ? true : undefined;
      });
      const second = await app.inject({
        method: 'POST',
        url: '/v1/audiences/preview',
        headers: auth,
        payload: JSON.stringify({ rule: { stage: { in: ['active'] } } }),
      });
      expect({
        status: second.statusCode,
        retryAfter: second.headers['retry-after'],
        code: (second.json() as { error: { code: string } }).error.code,
      }).toEqual({ status: 429, retryAfter: '1', code: 'QRY_AUDIENCES_BUSY' });
      await locker.query('COMMIT');
      expect((await first).statusCode).toBe(200);
      expect((await send('POST', '/v1/audiences/preview', { rule: { stage: { in: ['active'] } } })).status).toBe(200);
    } finally {
      await locker.end();
    }
  });

  it('answers 503 QRY_RULE_TOO_COSTLY when Postgres cancels an evaluation past PREVIEW_STATEMENT_TIMEOUT_MS, and keeps serving', async () => {
    const bounded = await buildQuery(
      queryConfig({ ...store.box.env, API_TOKENS: 't-all=*', PREVIEW_STATEMENT_TIMEOUT_MS: '200' }),
      { log: silentLog, redis: store.redis, pool: store.pool, checks: [], metrics: createMetrics('query-api') },
    );
    const ask = async (url: string, payload: unknown) => {
      const res = await bounded.inject({ method: 'POST', url, headers: auth, payload: JSON.stringify(payload) });
      return { status: res.statusCode, error: (res.json() as { error?: { code: string; message: string } }).error };
    };
    // A lock on people holds every evaluation until Postgres cancels it.
    const locker = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE "${store.box.env.PG_SCHEMA!}".people IN ACCESS EXCLUSIVE MODE`);
      const tooCostly = {
        status: 503,
        error: {
          code: 'QRY_RULE_TOO_COSTLY',
          message: expect.stringMatching(/longer than 200 ms \(PREVIEW_STATEMENT_TIMEOUT_MS\)/),
        },
      };
      const rule = { not: { stage: { in: ['churned'] } } };
      expect(await ask('/v1/audiences/preview', { rule })).toEqual(tooCostly);
      expect(await ask('/v1/audiences', { name: 'slow', rule })).toEqual(tooCostly);
      await locker.query('COMMIT');
      expect((await ask('/v1/audiences/preview', { rule })).status).toBe(200);
      expect((await ask('/v1/audiences', { name: 'fast', rule })).status).toBe(201);
    } finally {
      await locker.end();
      await bounded.close();
    }
    // the shared pool carries no timeout: the instance's other reads are not bounded by it
    expect(
      (await store.pool.query<{ statement_timeout: string }>('SHOW statement_timeout')).rows[0]!.statement_timeout,
    ).toBe('0');
  });

  it('answers 408 QRY_REQUEST_TIMEOUT when a request does not arrive within REQUEST_TIMEOUT_MS, and the scorer port has a deadline too', async () => {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    const reply = await unfinished(
      port,
      'POST /v1/audiences/preview HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t-all\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"rule":',
    );
    expect(reply).toMatch(/^HTTP\/1\.1 408 Request Timeout/);
    expect(JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4))).toMatchObject({
      error: { code: 'QRY_REQUEST_TIMEOUT' },
    });
    const scorer = await buildScorer({ log: silentLog, checks: [], metrics: createMetrics('scorer') });
    await scorer.ready();
    expect(scorer.server.requestTimeout).toBe(10_000);
    await scorer.close();
  });
});
