import { readInterests, type Keys } from '@pstream/interest-store';
import type { DecayParams } from '@pstream/scoring';
import type { FastifyInstance, preHandlerHookHandler } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { createFactsReader } from '../profiles';

const errorBody = z.object({ error: z.string(), message: z.string() });
const params = z.object({ id: z.string().min(1).max(128).describe('userId or anonymousId') });
const interest = z.object({
  tag: z.string(),
  dimension: z.string(),
  score: z.number().describe('decayed score at computedAt'),
  value: z.number().describe('10·tanh(score/10), 0-10'),
});
const profile = z.object({
  userId: z.string(),
  lifecycle: z.object({ stage: z.string().nullable(), since: z.string().nullable(), evaluatedAt: z.string() }).nullable(),
  interests: z.array(interest).describe('top 20 by score'),
  stats: z
    .object({
      firstSeenAt: z.string(),
      lastActiveAt: z.string(),
      events: z.record(z.string(), z.number()),
      purchases: z.number(),
      monetary: z.object({ currency: z.string(), total: z.number() }),
    })
    .nullable(),
  computedAt: z.string(),
});

export type ProfileRouteDeps = {
  redis: Redis;
  keys: Keys;
  facts: ReturnType<typeof createFactsReader>;
  decay: DecayParams;
  valueScale: number;
  baseCurrency: string;
  guard: preHandlerHookHandler;
};

/** `GET /v1/profiles/{id}` (SPEC §5.1). */
export function registerProfileRoutes(app: FastifyInstance, deps: ProfileRouteDeps): void {
  app.withTypeProvider<ZodTypeProvider>().get(
    '/v1/profiles/:id',
    {
      preHandler: deps.guard,
      schema: {
        tags: ['profiles'],
        summary: 'A person’s profile: interests decayed to computedAt, facts and lifecycle stage',
        security: [{ bearerAuth: [] }],
        params,
        response: { 200: profile, 401: errorBody, 403: errorBody, 404: errorBody },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const nowMs = Date.now();
      const [interests, facts] = await Promise.all([
        readInterests(deps.redis, deps.keys, id, { nowMs, limit: 20, decay: deps.decay, valueScale: deps.valueScale }),
        deps.facts.get(id),
      ]);
      if (!facts && interests.length === 0) {
        return reply.code(404).send({ error: 'Not Found', message: `no profile for id ${id}` });
      }
      return {
        userId: id,
        lifecycle: facts ? { stage: facts.stage, since: facts.stageSince, evaluatedAt: facts.stageEvaluatedAt } : null,
        interests,
        stats: facts
          ? {
              firstSeenAt: facts.firstSeenAt,
              lastActiveAt: facts.lastActiveAt,
              events: facts.events,
              purchases: facts.purchases,
              monetary: { currency: deps.baseCurrency, total: facts.monetaryTotal },
            }
          : null,
        computedAt: new Date(nowMs).toISOString(),
      };
    },
  );
}
