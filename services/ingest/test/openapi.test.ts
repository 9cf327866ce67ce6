import { createMetrics } from '@pstream/platform';
import { silentLog } from '../../../test/helpers';
import { buildApp } from '../src/app';
import { loadConfig } from '../src/config';

type Operation = { requestBody?: { content: Record<string, { schema: unknown }> }; responses: Record<string, unknown>; security?: unknown[] };

describe('the OpenAPI document', () => {
  it('describes every tracking route: body, each status with its error body, and both auth schemes', async () => {
    const publisher = { publish: () => Promise.reject(new Error('not used')) };
    const app = await buildApp(loadConfig({ WRITE_KEYS: 'k=web' }), { log: silentLog, publisher, checks: [], metrics: createMetrics('ingest') });
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
      paths: Record<string, { post: Operation }>;
      components: { securitySchemes: Record<string, unknown> };
    };
    expect(Object.keys(doc.paths).sort()).toEqual(['/v1/alias', '/v1/batch', '/v1/events', '/v1/identify', '/v1/track']);
    for (const [path, { post }] of Object.entries(doc.paths)) {
      expect([path, Object.keys(post.responses).sort()]).toEqual([path, ['202', '400', '401', '408', '413', '415', '429', '503']]);
      expect(post.requestBody?.content['application/json']?.schema).toBeDefined();
      expect(post.security).toEqual([{ basicAuth: [] }, { writeKey: [] }]);
    }
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(['basicAuth', 'writeKey']);
    // The event body is the native zod schema itself: its fields and rules show up.
    expect(JSON.stringify(doc.paths['/v1/events']!.post.requestBody)).toContain('"dwellMs"');
    expect(JSON.stringify(doc.paths['/v1/events']!.post.responses['400'])).toContain('rejected');
    const ui = await app.inject({ method: 'GET', url: '/docs/' });
    expect(ui.statusCode).toBe(200);
    await app.close();
  });
});
