import { createPersonReader, readInterests, type Keys } from '@pstream/interest-store';
import { SOCIAL_TIERS, STAGES, VALUE_TIERS } from '@pstream/lifecycle';
import { predictionsServed, type createFactsReader } from '@pstream/profile-store';
import { QueryErrors } from '../errors';
import { interestSchema } from './interests';
import { errorResponse, sendError } from '@pstream/http';
import type { DecayParams } from '@pstream/scoring';
import type { FastifyInstance, preHandlerHookHandler } from 'fastify';
import { validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { unstorableString } from '@pstream/events';
import type { Redis } from '@pstream/platform';
import { z } from 'zod';
import { profileIdParams } from './params';
import { successSerializerWithNative } from '../serialize';
const time = z.string().describe('ISO-8601 UTC');
const prediction = z.object({
  value: z.string().describe('the predicted class'),
  confidence: z
    .number()
    .describe('the model’s probability for it (0-1); near the class’s base rate when behaviour says little'),
});
const predictedSchema = z
  .object({ gender: prediction.optional(), ageBand: prediction.optional() })
  .describe(
    'traits predicted from behaviour (docs/api.md §5.9), only those the person has not given; empty when opted out or not predicted yet',
  );
export const profileSchema = z
  .object({
    userId: z.string().nullable().describe('null for an anonymous profile not linked to a user'),
    anonymousIds: z.array(z.string()).describe('anonymous ids merged into this profile (or its own)'),
    traits: z.record(z.string(), z.unknown()).describe('from identify; later values win'),
    lifecycle: z.object({
      stage: z.enum(STAGES).nullable().describe('docs/model.md §4.3; null before the first event'),
      since: time.nullable(),
      evaluatedAt: time,
    }),
    tiers: z.object({ value: z.enum(VALUE_TIERS), social: z.enum(SOCIAL_TIERS) }),
    interests: z.array(interestSchema).describe('top 20 by score; empty when the person opted out of personalization'),
    stats: z.object({
      firstSeenAt: time.nullable(),
      lastActiveAt: time.nullable().describe('latest event time'),
      events: z.record(z.string(), z.number()).describe('count per event type'),
      purchases: z
        .number()
        .describe('orders (§4.2): line items sharing an orderId count once; a purchase without one counts on its own'),
      monetary: z.object({
        currency: z.string(),
        total: z.number().describe('every purchase line converted to the base currency, summed'),
      }),
    }),
    follows: z.object({
      count: z.number(),
      recent: z.array(z.object({ type: z.string(), id: z.string(), since: time })).describe('latest 10'),
    }),
    consent: z
      .object({ personalization: z.boolean() })
      .describe('opted in unless the person opted out (docs/model.md §4.5)'),
    predicted: predictedSchema,
    computedAt: time,
  })
  .describe('A person’s profile (docs/api.md §5.1)');

export type ProfileRouteDeps = {
  redis: Redis;
  keys: Keys;
  facts: ReturnType<typeof createFactsReader>;
  decay: DecayParams;
  valueScale: number;
  baseCurrency: string;
  guard: preHandlerHookHandler;
};

/** The early interests read failed: read again under the resolved key (which throws if it fails too). */
const noInterests = () => undefined;

/**
 * The route's check of `{id}`: an id that is plainly valid (1-128 characters, nothing
 * `unstorableString` refuses) is taken as it is, without running zod's (~2.5 % of the query API's
 * CPU per profile read, BENCHMARKS.md "Reads"); anything else goes to zod's check, which answers
 * exactly as before.
 */
function profileIdValidator(route: { schema: unknown; method: string; url: string; httpPart?: string }) {
  const zodCheck = validatorCompiler({ ...route, schema: route.schema as z.ZodType });
  if (route.httpPart !== 'params') return zodCheck;
  return (data: unknown) => {
    const id = (data as { id?: unknown }).id;
    return typeof id === 'string' && id.length >= 1 && id.length <= 128 && unstorableString(id) === undefined
      ? { value: { id } }
      : zodCheck(data);
  };
}

const profileSerializer = successSerializerWithNative(['interests']);

/** `GET /v1/profiles/{id}` (docs/api.md §5.1). */
export function registerProfileRoutes(app: FastifyInstance, deps: ProfileRouteDeps): void {
  // the reads of one turn in one MGET, sent as a plain command (BENCHMARKS.md "Reads")
  const person = createPersonReader(deps.redis);
  app.withTypeProvider<ZodTypeProvider>().get(
    '/v1/profiles/:id',
    {
      preHandler: deps.guard,
      // the interests (built by readInterests with the schema's keys, in order) by JSON.stringify
      serializerCompiler: profileSerializer,
      validatorCompiler: profileIdValidator,
      schema: {
        operationId: 'getProfile',
        tags: ['profiles'],
        summary:
          'A person’s profile: identities, traits, lifecycle stage and tiers, interests decayed to computedAt, facts',
        security: [{ bearerAuth: [] }],
        params: profileIdParams,
        response: {
          200: profileSchema,
          400: errorResponse('Invalid id (QRY_INVALID_REQUEST; `error.details` names the problem)'),
          401: errorResponse('Missing or unknown bearer token (QRY_UNAUTHORIZED)', { 'WWW-Authenticate': 'Bearer' }),
          403: errorResponse('The token lacks profiles:read (QRY_FORBIDDEN)'),
          404: errorResponse('No profile for this id (QRY_PROFILE_NOT_FOUND)'),
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const nowMs = Date.now();
      const options = { nowMs, limit: 20, decay: deps.decay, valueScale: deps.valueScale, person };
      // One read per store, both at once: Redis under the id as asked while Postgres resolves it
      // and returns every part of the profile in one statement (the stored predictions, §5.9,
      // included). Almost every read names the profile key itself; for an id Postgres resolves to
      // another key (a merged anonymousId) the interests are read again under that key. Consent
      // (§4.5) is known only once Postgres answered: an opted-out person's interests and
      // predictions, read or not, are never served.
      const [facts, early] = await Promise.all([
        deps.facts.get(id),
        readInterests(deps.redis, deps.keys, id, options).catch(noInterests),
      ]);
      if (!facts) return sendError(reply, 404, QueryErrors.PROFILE_NOT_FOUND, `no profile for id ${id}`);
      const interests = !facts.personalization
        ? []
        : facts.profileKey === id && early !== undefined
          ? early
          : await readInterests(deps.redis, deps.keys, facts.profileKey, options);
      const predicted = facts.personalization ? predictionsServed(facts.predictions, facts.traits) : {};
      return {
        userId: facts.userId,
        anonymousIds: facts.anonymousIds,
        traits: facts.traits,
        lifecycle: facts.lifecycle as z.infer<typeof profileSchema>['lifecycle'],
        tiers: facts.tiers as z.infer<typeof profileSchema>['tiers'],
        interests,
        stats: {
          firstSeenAt: facts.stats.firstSeenAt,
          lastActiveAt: facts.stats.lastActiveAt,
          events: facts.stats.events,
          purchases: facts.stats.purchases,
          monetary: { currency: deps.baseCurrency, total: facts.stats.monetaryTotal },
        },
        follows: facts.follows,
        consent: { personalization: facts.personalization },
        predicted,
        computedAt: new Date(nowMs).toISOString(),
      };
    },
  );
}
