import { createMetrics } from '@pstream/platform';
import { silentLog } from '@pstream/testkit';
import { buildApp } from '../src/app';
import { loadConfig } from '../src/config';

type Operation = {
  operationId?: string;
  requestBody?: { content: Record<string, { schema: unknown }> };
  responses: Record<string, unknown>;
  security?: unknown[];
};

describe('the OpenAPI document', () => {
  it('describes every tracking route: body, each status with its error body, and both auth schemes', async () => {
    const publisher = { publish: () => Promise.reject(new Error('not used')) };
    const app = await buildApp(loadConfig({ WRITE_KEYS: 'k=web' }), {
      log: silentLog,
      publisher,
      checks: [],
      metrics: createMetrics('ingest'),
    });
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
      paths: Record<string, { post: Operation }>;
      components: { securitySchemes: Record<string, unknown>; schemas: Record<string, unknown> };
    };
    // Segment's HTTP API paths and the short ones analytics.js posts to; no read route, no OPTIONS.
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/v1/a',
      '/v1/alias',
      '/v1/b',
      '/v1/batch',
      '/v1/events',
      '/v1/g',
      '/v1/group',
      '/v1/i',
      '/v1/identify',
      '/v1/p',
      '/v1/page',
      '/v1/s',
      '/v1/screen',
      '/v1/t',
      '/v1/track',
    ]);
    for (const [path, methods] of Object.entries(doc.paths)) {
      expect([path, Object.keys(methods)]).toEqual([path, ['post']]);
      const { post } = methods;
      expect([path, Object.keys(post.responses).sort()]).toEqual([
        path,
        ['202', '400', '401', '403', '408', '413', '415', '429', '503'],
      ]);
      expect(post.requestBody?.content['application/json']?.schema).toBeDefined();
      expect(post.security).toEqual([{ basicAuth: [] }, { writeKey: [] }]);
      expect(post.operationId).toMatch(/^[a-z][A-Za-z]+$/);
    }
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(['basicAuth', 'writeKey']);
    // The event body is the native zod schema itself, published once by name: its fields and rules show up.
    expect(JSON.stringify(doc.paths['/v1/events']!.post.requestBody)).toContain(
      '#/components/schemas/NativeEventInput',
    );
    expect(JSON.stringify(doc.components.schemas.NativeEventInput)).toContain('"dwellMs"');
    // Every error is the one error body.
    for (const { post } of Object.values(doc.paths)) {
      for (const [status, response] of Object.entries(post.responses)) {
        if (status !== '202') expect(JSON.stringify(response)).toContain('#/components/schemas/Error');
      }
    }
    expect(JSON.stringify(doc.paths['/v1/events']!.post.responses['400'])).toContain('rejected');
    expect(JSON.stringify(doc.paths['/v1/page']!.post.requestBody)).toContain('#/components/schemas/SegmentPageInput');
    expect(JSON.stringify(doc.components.schemas.SegmentPageInput)).toContain('content_id');
    expect(JSON.stringify(doc.paths['/v1/t']!.post.responses['202'])).toContain('#/components/schemas/Accepted');
    expect(JSON.stringify(doc.components.schemas.Accepted)).toContain('ignored');
    const ui = await app.inject({ method: 'GET', url: '/docs/' });
    expect(ui.statusCode).toBe(200);
    await app.close();
  });
});
