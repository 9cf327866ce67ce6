import { TARGET_TYPES, tagSchema, unstorableString } from '@pstream/events';
import { errorResponse, sendError } from '@pstream/http';
import { lookupCatalog, writeCatalog, type Keys } from '@pstream/interest-store';
import { targetTag } from '@pstream/scoring';
import type { FastifyInstance, preHandlerHookHandler } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Redis } from '@pstream/platform';
import { z } from 'zod';
import { QueryErrors } from '../errors';

export const targetParams = z.object({
  type: z.enum(TARGET_TYPES).describe('target type'),
  id: z
    .string()
    .min(1)
    .max(128)
    .superRefine((id, ctx) => {
      const why = unstorableString(id);
      if (why !== undefined) ctx.addIssue({ code: 'custom', message: why });
    })
    .describe('target id, 1-128 characters (URL-encoded)'),
});
export const catalogEntrySchema = z
  .object({
    target: z.object({ type: z.enum(TARGET_TYPES), id: z.string() }),
    tags: z.array(z.string()).describe('the tags events about this target get when they carry none'),
  })
  .describe('A catalog entry (docs/api.md §5.6)');
const body = z.strictObject({
  tags: z.array(tagSchema).max(32, 'at most 32 tags').describe('0-32 tags, "dimension:value"'),
});

export type CatalogRouteDeps = { redis: Redis; keys: Keys; read: preHandlerHookHandler; write: preHandlerHookHandler };

/**
 * `PUT`/`GET /v1/catalog/{type}/{id}` (docs/api.md §5.6): a target's tags. The scorer gives them to
 * events about the target that carry no tags of their own, from the moment they are stored.
 */
export function registerCatalogRoutes(app: FastifyInstance, deps: CatalogRouteDeps): void {
  const common = {
    401: errorResponse('Missing or unknown bearer token (QRY_UNAUTHORIZED)', { 'WWW-Authenticate': 'Bearer' }),
  };
  app.withTypeProvider<ZodTypeProvider>().put(
    '/v1/catalog/:type/:id',
    {
      preHandler: deps.write,
      schema: {
        operationId: 'putCatalogEntry',
        tags: ['catalog'],
        summary: 'Store a target’s tags (replaces what was there)',
        security: [{ bearerAuth: [] }],
        params: targetParams,
        body,
        response: {
          200: catalogEntrySchema,
          400: errorResponse('Invalid target or tags (QRY_INVALID_REQUEST; `error.details` names each)'),
          ...common,
          403: errorResponse('The token lacks audiences:write (QRY_FORBIDDEN)'),
        },
      },
    },
    async (request) => {
      const target = request.params;
      const tags = [...new Set(request.body.tags)];
      await writeCatalog(deps.redis, deps.keys, targetTag(target), tags);
      return { target, tags };
    },
  );
  app.withTypeProvider<ZodTypeProvider>().get(
    '/v1/catalog/:type/:id',
    {
      preHandler: deps.read,
      schema: {
        operationId: 'getCatalogEntry',
        tags: ['catalog'],
        summary: 'A target’s catalog tags',
        security: [{ bearerAuth: [] }],
        params: targetParams,
        response: {
          200: catalogEntrySchema,
          400: errorResponse('Invalid target (QRY_INVALID_REQUEST)'),
          ...common,
          403: errorResponse('The token lacks profiles:read (QRY_FORBIDDEN)'),
          404: errorResponse('No catalog entry for this target (QRY_CATALOG_NOT_FOUND)'),
        },
      },
    },
    async (request, reply) => {
      const target = request.params;
      const found = (await lookupCatalog(deps.redis, deps.keys, [targetTag(target)])).get(targetTag(target));
      if (!found)
        return sendError(reply, 404, QueryErrors.CATALOG_NOT_FOUND, `no catalog entry for ${target.type}:${target.id}`);
      return { target, tags: found };
    },
  );
}
