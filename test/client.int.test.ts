import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createQueryClient, QueryApiError, type QueryClient } from '@pstream/client';
import { createMetrics, createPool, createRedis, type Pool, type Redis } from '@pstream/platform';
import { migrate } from '@pstream/profile-store';
import { buildApp as buildQuery } from '@pstream/query-api/app';
import { loadConfig as queryConfig } from '@pstream/query-api/config';
import type { FastifyInstance } from 'fastify';
import { createSandbox, type Sandbox, silentLog } from '@pstream/testkit';

const CLIENT_DIR = path.join(__dirname, '..', 'packages', 'client');

/** openapi-typescript (the client's generator) run on `input`, printing the types it makes. */
function generateTypes(input: string, output: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      path.join(CLIENT_DIR, 'node_modules', '.bin', 'openapi-typescript'),
      [input, '--output', output],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let printed = '';
    child.stdout.on('data', (d: Buffer) => (printed += d.toString()));
    child.stderr.on('data', (d: Buffer) => (printed += d.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`openapi-typescript exited ${code}: ${printed}`)),
    );
  });
}

/*
 * @pstream/client against the query API listening on a real port: its types are exactly what the
 * service serves at /openapi.json today, its calls reach the routes, and every non-2xx answer
 * rejects with the API's error body.
 */
describe('@pstream/client against a running query API', () => {
  let box: Sandbox;
  let pool: Pool;
  let redis: Redis;
  let app: FastifyInstance;
  let baseUrl: string;
  let client: QueryClient;

  beforeAll(async () => {
    box = await createSandbox(1);
    const config = queryConfig({ ...box.env, API_TOKENS: 'dev-api-token=*,reader=profiles:read' });
    pool = createPool(config.DATABASE_URL, config.PG_SCHEMA, 'test-client');
    await migrate(pool, config.PG_SCHEMA);
    redis = createRedis(config, 'test-client');
    app = await buildQuery(config, { log: silentLog, redis, pool, checks: [], metrics: createMetrics('query-api') });
    await app.listen({ host: '127.0.0.1', port: 0 });
    baseUrl = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    client = createQueryClient({ baseUrl, token: 'dev-api-token' });
  });

  afterAll(async () => {
    await app?.close();
    redis?.disconnect();
    await pool?.end();
    await box?.cleanup();
  });

  it('its generated types are what the running service serves at /openapi.json (else: pnpm --filter @pstream/client generate)', async () => {
    const served = await fetch(`${baseUrl}/openapi.json`);
    expect(served.status).toBe(200);
    const dir = await mkdtemp(path.join(tmpdir(), 'pstream-client-'));
    try {
      await writeFile(path.join(dir, 'query-api.json'), await served.text());
      await generateTypes(path.join(dir, 'query-api.json'), path.join(dir, 'schema.ts'));
      const fresh = await readFile(path.join(dir, 'schema.ts'), 'utf8');
      const committed = await readFile(path.join(CLIENT_DIR, 'src', 'schema.ts'), 'utf8');
      // A plain equality would print 2 000 lines; the first differing line says what drifted.
      const [a, b] = [fresh.split('\n'), committed.split('\n')];
      const at = a.findIndex((line, i) => line !== b[i]);
      expect(at === -1 && a.length === b.length ? 'in step' : { line: at + 1, served: a[at], committed: b[at] }).toBe(
        'in step',
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('an unknown profile rejects with the 404 error body, its code and the request id', async () => {
    const err = await client.profile('nobody-here').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QueryApiError);
    const e = err as QueryApiError;
    expect({ status: e.status, code: e.code }).toEqual({ status: 404, code: 'QRY_PROFILE_NOT_FOUND' });
    expect(e.body.error.message).toBe(e.message.slice(e.message.indexOf(': ') + 2));
    expect(e.requestId).toMatch(/\S/);
  });

  it('a missing scope is a 403 naming it, a wrong token a 401', async () => {
    const reader = createQueryClient({ baseUrl, token: 'reader' });
    const forbidden = (await reader.catalog
      .put('product', 'p-1', ['category:bags'])
      .catch((e: unknown) => e)) as QueryApiError;
    expect({ status: forbidden.status, code: forbidden.code }).toEqual({ status: 403, code: 'QRY_FORBIDDEN' });
    expect(forbidden.message).toContain('audiences:write');
    const stranger = createQueryClient({ baseUrl, token: 'not-a-token' });
    expect(await stranger.profile('u-1').catch((e: unknown) => (e as QueryApiError).code)).toBe('QRY_UNAUTHORIZED');
  });

  it('a malformed rule rejects with the 400 body whose details name the path', async () => {
    const err = (await client.audiences
      .preview({ all: [{ stage: { in: ['royal'] } }] } as never)
      .catch((e: unknown) => e)) as QueryApiError;
    expect({ status: err.status, code: err.code }).toEqual({ status: 400, code: 'QRY_INVALID_REQUEST' });
    expect(JSON.stringify(err.details)).toContain('all');
  });

  it('writes and reads back through the typed routes, ids with reserved characters included', async () => {
    const target = 'p:1.a-b';
    await client.catalog.put('product', target, ['category:bags', 'brand:acme']);
    expect((await client.catalog.get('product', target)).tags).toEqual(['category:bags', 'brand:acme']);
    const created = await client.audiences.create({
      name: 'bags',
      rule: { interest: { tag: 'category:bags', minValue: 1 } },
    });
    expect(await client.audiences.get(created.id)).toEqual(created);
    expect((await client.audiences.list()).audiences.map((a) => a.id)).toContain(created.id);
    const members: string[] = [];
    for await (const member of client.audiences.allMembers(created.id)) members.push(member);
    expect(members).toEqual([]);
    await client.audiences.delete(created.id);
    expect(await client.audiences.get(created.id).catch((e: unknown) => (e as QueryApiError).code)).toBe(
      'QRY_AUDIENCE_NOT_FOUND',
    );
    const followers = await client.followers.of('shop', 's-none');
    expect(followers.followers).toBe(0);
    // No lag sampler in this app: the ops routes answer 503 with their code.
    await expect(client.ops.lag()).rejects.toMatchObject({ status: 503, code: 'QRY_LAG_UNAVAILABLE' });
  });
  it('reaches explain, the models and the paged interests (routes added after 0.1.0)', async () => {
    const trained = await client.models.train('gender');
    expect(trained).toMatchObject({ trait: 'gender' });
    expect(Array.isArray((await client.models.list()).models)).toBe(true);
    await expect(client.audiences.explain({ id: 'nobody', rule: { stage: { in: ['active'] } } })).rejects.toMatchObject(
      { status: 404 },
    );
    const unknown = client.allInterests('nobody', { pageSize: 10 });
    await expect(unknown.next()).rejects.toMatchObject({ status: 404 });
  });
});
