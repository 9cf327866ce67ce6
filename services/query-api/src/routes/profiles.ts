import { readInterests, type Keys } from '@pstream/interest-store';
import { SOCIAL_TIERS, STAGES, VALUE_TIERS } from '@pstream/lifecycle';
import type { DecayParams } from '@pstream/scoring';
import type { FastifyInstance, preHandlerHookHandler } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { createFactsReader } from '../profiles';
import { profileIdParams } from './params';

const errorBody = z.object({ error: z.string(), message: z.string() });
const interest = z.object({
  tag: z.string(),
  dimension: z.string(),
  score: z.number().describe('decayed score at computedAt'),
  value: z.number().describe('10·tanh(score/10), 0-10'),
});
const time = z.string().describe('ISO-8601 UTC');
const profile = z.object({
  userId: z.string().nullable().describe('null for an anonymous profile not linked to a user'),
  anonymousIds: z.array(z.string()).describe('anonymous ids merged into this profile (or its own)'),
  traits: z.record(z.string(), z.unknown()).describe('from identify; later values win'),
  lifecycle: z.object({
    stage: z.enum(STAGES).nullable().describe('SPEC §4.3; null before the first event'),
    since: time.nullable(),
    evaluatedAt: time,
  }),
  tiers: z.object({ value: z.enum(VALUE_TIERS), social: z.enum(SOCIAL_TIERS) }),
  interests: z.array(interest).describe('top 20 by score'),
  stats: z.object({
    firstSeenAt: time.nullable(),
    lastActiveAt: time.nullable().describe('latest event time'),
    events: z.record(z.string(), z.number()).describe('count per event type'),
    purchases: z.number().describe('orders (§4.2): line items sharing an orderId count once; a purchase without one counts on its own'),
    monetary: z.object({ currency: z.string(), total: z.number().describe('every purchase line converted to the base currency, summed') }),
  }),
  follows: z.object({
    count: z.number(),
    recent: z.array(z.object({ type: z.string(), id: z.string(), since: time })).describe('latest 10'),
  }),
  consent: z.object({ personalization: z.boolean() }).describe('opted in unless the person opted out (SPEC §4.5)'),
  computedAt: time,
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
        summary: 'A person’s profile: identities, traits, lifecycle stage and tiers, interests decayed to computedAt, facts',
        security: [{ bearerAuth: [] }],
        params: profileIdParams,
        response: { 200: profile, 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const nowMs = Date.now();
      const facts = await deps.facts.get(id);
      if (!facts) return reply.code(404).send({ error: 'Not Found', message: `no profile for id ${id}` });
      const interests = await readInterests(deps.redis, deps.keys, facts.profileKey, {
        nowMs,
        limit: 20,
        decay: deps.decay,
        valueScale: deps.valueScale,
      });
      return {
        userId: facts.userId,
        anonymousIds: facts.anonymousIds,
        traits: facts.traits,
        lifecycle: facts.lifecycle as z.infer<typeof profile>['lifecycle'],
        tiers: facts.tiers as z.infer<typeof profile>['tiers'],
        interests,
        stats: {
          firstSeenAt: facts.stats.firstSeenAt,
          lastActiveAt: facts.stats.lastActiveAt,
          events: facts.stats.events,
          purchases: facts.stats.purchases,
          monetary: { currency: deps.baseCurrency, total: facts.stats.monetaryTotal },
        },
        follows: facts.follows,
        // Consent arrives with the privacy issue (§4.5, §5.7); until then everyone is opted in.
        consent: { personalization: true },
        computedAt: new Date(nowMs).toISOString(),
      };
    },
  );
}
