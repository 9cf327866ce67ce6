import { readFileSync } from 'node:fs';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { audienceIdSchema } from './audiences';
import { profileIdParams } from './params';

const PUBLIC_DIR = path.resolve(__dirname, '../../public');

/**
 * `GET /audiences/{id}/explain/{profileId}`: why a person is, or is not, in a saved audience
 * (docs/api.md §5.4 explain), as a tree of the rule's nodes, each marked holds / does not hold
 * with the value each condition compared. Like the merchant page, a static shell holding no data:
 * its script calls `GET /v1/audiences/{id}` and `POST /v1/audiences/explain` with the token in
 * the URL fragment (`#token=…`), so the data needs profiles:read like any other read.
 */
export async function registerExplainPage(app: FastifyInstance): Promise<void> {
  const html = readFileSync(path.join(PUBLIC_DIR, 'explain.html'), 'utf8');
  await app.register(fastifyStatic, {
    root: PUBLIC_DIR,
    prefix: '/audiences/assets/',
    decorateReply: false,
    allowedPath: (p) => /^\/explain\.(js|css)$/.test(p),
    schemaHide: true,
  });
  app
    .withTypeProvider<ZodTypeProvider>()
    .get(
      '/audiences/:id/explain/:profileId',
      { schema: { hide: true, params: z.object({ id: audienceIdSchema, profileId: profileIdParams.shape.id }) } },
      async (_request, reply) => reply.type('text/html; charset=utf-8').header('Cache-Control', 'no-cache').send(html),
    );
}
