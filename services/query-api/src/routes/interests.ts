import { readInterests, type Interest, type Keys } from '@pstream/interest-store';
import { errorResponse, sendError } from '@pstream/http';
import { QueryErrors } from '../errors';
import { decayedScore, tagValue, type DecayParams } from '@pstream/scoring';
import type { FastifyInstance, preHandlerHookHandler } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Redis } from '@pstream/platform';
import { z } from 'zod';
import { cursorParam, decodeCursor, encodeCursor, profileIdParams } from './params';

const query = z.object({
  dimension: z
    .string()
    .regex(/^[a-z][a-z0-9_]{0,31}$/, 'must be a tag dimension: [a-z][a-z0-9_]{0,31}')
    .optional()
    .describe('only tags of this dimension, e.g. category'),
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(200)
    .default(200)
    .describe('at most 200 a page; follow nextCursor for the rest'),
  cursor: cursorParam,
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
    nextCursor: z.string().nullable().describe('pass as cursor for the next page; null on the last page'),
    computedAt: z.string().describe('the time this page’s scores are decayed to'),
  })
  .describe('One page of the person’s interest tags, highest score first');

export type InterestRouteDeps = {
  redis: Redis;
  keys: Keys;
  /** The profile key an id answers for, or undefined when neither store knows it (404). */
  profileOf: (id: string) => Promise<string | undefined>;
  decay: DecayParams;
  valueScale: number;
  /** Consent (docs/model.md §4.5): false when the id's person opted out of personalization. */
  personalizationAllowed: (id: string) => Promise<boolean>;
  guard: preHandlerHookHandler;
};

/**
 * Where a page ends: a tag's stored forward score (its score read at the decay landmark, which
 * time never changes — decay multiplies every score of a person by one factor, so it never
 * reorders them) and the tag, which orders ties. Pages are in (stored score, tag) descending.
 */
type Position = { stored: number; tag: string };
const before = (a: Position, b: Position) => a.stored > b.stored || (a.stored === b.stored && a.tag > b.tag);

function parsePosition(cursor: string): Position | undefined {
  const text = decodeCursor(cursor);
  if (text === undefined) return undefined;
  try {
    const [stored, tag] = JSON.parse(text) as unknown[];
    return typeof stored === 'number' && Number.isFinite(stored) && typeof tag === 'string'
      ? { stored, tag }
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `GET /v1/profiles/{id}/interests?dimension=&limit=&cursor=` (docs/api.md §5.2). An id that was
 * merged into another (§4.4) answers with the merged profile's interests; an id neither store knows
 * answers 404, as the profile does; a person who opted out of personalization (§4.5) has none
 * (200, empty).
 *
 * Paging is keyset on the stored order: following `nextCursor` gives every tag once, however much
 * time passes between pages (each page's scores are decayed to its own `computedAt`). Each page
 * reads the person's whole set (at most MAX_TAGS_PER_PERSON tags, one round trip) through
 * interest-store's `readInterests` evaluated at the landmark, where a score is its stored value.
 */
export function registerInterestRoutes(app: FastifyInstance, deps: InterestRouteDeps): void {
  app.withTypeProvider<ZodTypeProvider>().get(
    '/v1/profiles/:id/interests',
    {
      preHandler: deps.guard,
      schema: {
        operationId: 'getInterests',
        tags: ['profiles'],
        summary: 'A person’s interest tags, decayed to computedAt, a page at a time',
        security: [{ bearerAuth: [] }],
        params: profileIdParams,
        querystring: query,
        response: {
          200: interestsSchema,
          400: errorResponse(
            'Invalid id, dimension, limit (QRY_INVALID_REQUEST; `error.details` names each) or cursor (QRY_INVALID_CURSOR)',
          ),
          401: errorResponse('Missing or unknown bearer token (QRY_UNAUTHORIZED)', { 'WWW-Authenticate': 'Bearer' }),
          403: errorResponse('The token lacks profiles:read (QRY_FORBIDDEN)'),
          404: errorResponse('Neither store knows the id (QRY_PROFILE_NOT_FOUND)'),
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const { cursor, limit, dimension } = request.query;
      const after = cursor === undefined ? undefined : parsePosition(cursor);
      if (cursor !== undefined && after === undefined)
        return sendError(reply, 400, QueryErrors.INVALID_CURSOR, 'cursor is not one this API gave out');
      const nowMs = Date.now();
      const computedAt = new Date(nowMs).toISOString();
      const key = await deps.profileOf(id);
      if (key === undefined) return sendError(reply, 404, QueryErrors.PROFILE_NOT_FOUND, `no profile for id ${id}`);
      if (!(await deps.personalizationAllowed(id))) return { interests: [], nextCursor: null, computedAt };
      // under the profile key the id resolves to, as the profile reads them: a merged id's Redis
      // alias chain can be longer than the read follows
      const stored: Interest[] = await readInterests(deps.redis, deps.keys, key, {
        nowMs: deps.decay.landmarkMs,
        limit: Number.MAX_SAFE_INTEGER,
        decay: deps.decay,
        valueScale: deps.valueScale,
        ...(dimension !== undefined && { dimension }),
      });
      const rest = stored
        .map((i) => ({ stored: i.score, tag: i.tag, dimension: i.dimension }))
        .filter((p) => after === undefined || before(after, p))
        .sort((a, b) => (before(a, b) ? -1 : before(b, a) ? 1 : 0));
      const page = rest.slice(0, limit);
      const last = page.at(-1);
      return {
        interests: page.map((p) => {
          const score = decayedScore(p.stored, nowMs, deps.decay);
          return { tag: p.tag, dimension: p.dimension, score, value: tagValue(score, deps.valueScale) };
        }),
        nextCursor:
          rest.length > limit && last !== undefined ? encodeCursor(JSON.stringify([last.stored, last.tag])) : null,
        computedAt,
      };
    },
  );
}
