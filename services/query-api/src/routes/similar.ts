import type { createSimilarFinder } from '@pstream/audiences';
import { errorResponse, sendError } from '@pstream/http';
import type { createFactsReader } from '@pstream/profile-store';
import type { FastifyInstance, preHandlerHookHandler } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { QueryErrors } from '../errors';

const params = z.object({ id: z.string().min(1).max(128).describe('userId or anonymousId') });
const query = z.object({ limit: z.coerce.number().int().min(1).max(100).default(10).describe('at most 100') });
export const similarSchema = z
  .object({
    similar: z
      .array(
        z.object({
          id: z.string().describe('profile id'),
          similarity: z.number().describe('cosine of the §5.3 feature vectors, -1..1'),
        }),
      )
      .describe(
        'most similar first; never the person or their merged ids; empty while the person opted out of personalization',
      ),
    computedAt: z.string().describe('the instant the vectors are taken at'),
  })
  .describe('People most similar to a person (docs/api.md §5.3)')
  .meta({
    examples: [
      {
        similar: [
          { id: 'u-2048', similarity: 0.93 },
          { id: 'u-77', similarity: 0.88 },
        ],
        computedAt: '2026-11-30T04:00:00.000Z',
      },
    ],
  });

export type SimilarRouteDeps = {
  facts: ReturnType<typeof createFactsReader>;
  finder: ReturnType<typeof createSimilarFinder>;
  guard: preHandlerHookHandler;
};

/** `GET /v1/profiles/{id}/similar?limit=` (docs/api.md §5.3). */
export function registerSimilarRoutes(app: FastifyInstance, deps: SimilarRouteDeps): void {
  app.withTypeProvider<ZodTypeProvider>().get(
    '/v1/profiles/:id/similar',
    {
      preHandler: deps.guard,
      schema: {
        operationId: 'getSimilar',
        tags: ['profiles'],
        summary: 'People most similar to this person: cosine of interest values, spend and social activity',
        security: [{ bearerAuth: [] }],
        params,
        querystring: query,
        response: {
          200: similarSchema,
          400: errorResponse('Invalid id or limit (QRY_INVALID_REQUEST)'),
          401: errorResponse('Missing or unknown bearer token (QRY_UNAUTHORIZED)', { 'WWW-Authenticate': 'Bearer' }),
          403: errorResponse('The token lacks profiles:read (QRY_FORBIDDEN)'),
          404: errorResponse('No profile for this id (QRY_PROFILE_NOT_FOUND)'),
        },
      },
    },
    async (request, reply) => {
      const nowMs = Date.now();
      const facts = await deps.facts.get(request.params.id);
      if (!facts) return sendError(reply, 404, QueryErrors.PROFILE_NOT_FOUND, `no profile for id ${request.params.id}`);
      // An opted-out person gets no personalization: nobody is ranked from their interests (§5.7).
      const similar = facts.personalization
        ? await deps.finder.similar(facts.profileKey, request.query.limit, nowMs, [
            ...facts.anonymousIds,
            request.params.id,
          ])
        : [];
      return { similar, computedAt: new Date(nowMs).toISOString() };
    },
  );
}
