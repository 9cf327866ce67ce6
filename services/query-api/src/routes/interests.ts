import { readInterests, type Keys } from '@pstream/interest-store';
import type { DecayParams } from '@pstream/scoring';
import type { FastifyInstance, preHandlerHookHandler } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { createFactsReader } from '../profiles';
import { profileIdParams } from './params';

const errorBody = z.object({ error: z.string(), message: z.string() });
const query = z.object({
  dimension: z
    .string()
    .regex(/^[a-z][a-z0-9_]{0,31}$/, 'must be a tag dimension: [a-z][a-z0-9_]{0,31}')
    .optional()
    .describe('only tags of this dimension, e.g. category'),
  limit: z.coerce.number().int().min(1).max(200).default(200).describe('at most 200; all tags if fewer'),
});
const body = z.object({
  interests: z
    .array(
      z.object({
        tag: z.string(),
        dimension: z.string(),
        score: z.number().describe('decayed score at computedAt'),
        value: z.number().describe('scale·tanh(score/scale), 0-10 by default'),
      }),
    )
    .describe('highest score first'),
  computedAt: z.string().describe('the time scores are decayed to'),
});

export type InterestRouteDeps = {
  redis: Redis;
  keys: Keys;
  facts: ReturnType<typeof createFactsReader>;
  decay: DecayParams;
  valueScale: number;
  guard: preHandlerHookHandler;
};

/**
 * `GET /v1/profiles/{id}/interests?dimension=&limit=` (SPEC §5.2). An id that was merged into
 * another (§4.4) answers with the merged profile's interests; an id neither store knows answers 404, as the profile does.
 */
export function registerInterestRoutes(app: FastifyInstance, deps: InterestRouteDeps): void {
  app.withTypeProvider<ZodTypeProvider>().get(
    '/v1/profiles/:id/interests',
    {
      preHandler: deps.guard,
      schema: {
        tags: ['profiles'],
        summary: 'A person’s interest tags, decayed to computedAt',
        security: [{ bearerAuth: [] }],
        params: profileIdParams,
        querystring: query,
        response: { 200: body, 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody },
      },
    },
    async (request, reply) => {
      const nowMs = Date.now();
      // Known to either store: the scorer's keys (Redis Cluster-safe, one hash tag) or a segmenter row.
      const p = deps.keys.person(request.params.id);
      const known = (await deps.redis.exists(p.interests, p.seen, p.alias)) > 0 || (await deps.facts.profileKeyOf(request.params.id)) !== undefined;
      if (!known) {
        return reply.code(404).send({ error: 'Not Found', message: `no profile for id ${request.params.id}` });
      }
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
