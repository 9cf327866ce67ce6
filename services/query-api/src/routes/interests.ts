import { knowsPerson, readInterests, type Keys } from '@pstream/interest-store';
import { errorResponse, sendError } from '@pstream/http';
import type { createFactsReader } from '@pstream/profile-store';
import { QueryErrors } from '../errors';
import type { DecayParams } from '@pstream/scoring';
import type { FastifyInstance, preHandlerHookHandler } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Redis } from '@pstream/platform';
import { z } from 'zod';
import { profileIdParams } from './params';

const query = z.object({
  dimension: z
    .string()
    .regex(/^[a-z][a-z0-9_]{0,31}$/, 'must be a tag dimension: [a-z][a-z0-9_]{0,31}')
    .optional()
    .describe('only tags of this dimension, e.g. category'),
  limit: z.coerce.number().int().min(1).max(200).default(200).describe('at most 200; all tags if fewer'),
});
/** One interest tag of a person, decayed to the answer's computedAt. */
export const interestSchema = z
  .object({
    tag: z.string().describe('dimension:value, e.g. category:dress'),
    dimension: z.string(),
    score: z.number().describe('decayed score at computedAt'),
    value: z.number().describe('scale·tanh(score/scale), 0-10 by default'),
  })
  .describe('One interest tag, decayed to computedAt');
export const interestsSchema = z
  .object({
    interests: z.array(interestSchema).describe('highest score first'),
    computedAt: z.string().describe('the time scores are decayed to'),
  })
  .describe('The person’s interest tags, highest score first');

export type InterestRouteDeps = {
  redis: Redis;
  keys: Keys;
  facts: ReturnType<typeof createFactsReader>;
  decay: DecayParams;
  valueScale: number;
  /** Consent (docs/model.md §4.5): false when the id's person opted out of personalization. */
  personalizationAllowed: (id: string) => Promise<boolean>;
  guard: preHandlerHookHandler;
};

/**
 * `GET /v1/profiles/{id}/interests?dimension=&limit=` (docs/api.md §5.2). An id that was merged into
 * another (§4.4) answers with the merged profile's interests; an id neither store knows answers 404, as the profile does;
 * a person who opted out of personalization (§4.5) has none (200, empty).
 */
export function registerInterestRoutes(app: FastifyInstance, deps: InterestRouteDeps): void {
  app.withTypeProvider<ZodTypeProvider>().get(
    '/v1/profiles/:id/interests',
    {
      preHandler: deps.guard,
      schema: {
        operationId: 'getInterests',
        tags: ['profiles'],
        summary: 'A person’s interest tags, decayed to computedAt',
        security: [{ bearerAuth: [] }],
        params: profileIdParams,
        querystring: query,
        response: {
          200: interestsSchema,
          400: errorResponse('Invalid id, dimension or limit (QRY_INVALID_REQUEST; `error.details` names each)'),
          401: errorResponse('Missing or unknown bearer token (QRY_UNAUTHORIZED)', { 'WWW-Authenticate': 'Bearer' }),
          403: errorResponse('The token lacks profiles:read (QRY_FORBIDDEN)'),
          404: errorResponse('Neither store knows the id (QRY_PROFILE_NOT_FOUND)'),
        },
      },
    },
    async (request, reply) => {
      const nowMs = Date.now();
      // Known to either store: the scorer's Redis keys or a segmenter row.
      const known = (await knowsPerson(deps.redis, deps.keys, request.params.id)) || (await deps.facts.profileKeyOf(request.params.id)) !== undefined;
      if (!known) return sendError(reply, 404, QueryErrors.PROFILE_NOT_FOUND, `no profile for id ${request.params.id}`);
      if (!(await deps.personalizationAllowed(request.params.id))) return { interests: [], computedAt: new Date(nowMs).toISOString() };
      const interests = await readInterests(deps.redis, deps.keys, request.params.id, {
        nowMs,
        limit: request.query.limit,
        decay: deps.decay,
        valueScale: deps.valueScale,
        ...(request.query.dimension !== undefined && { dimension: request.query.dimension }),
      });
      return { interests, computedAt: new Date(nowMs).toISOString() };
    },
  );
}
