import { createHash } from 'node:crypto';
import { errorResponse, sendError } from '@pstream/http';
import type { Keyring, Logger, Pool } from '@pstream/platform';
import { erasePerson, readErasure, setPersonalization } from '@pstream/profile-store';
import type { FastifyInstance, preHandlerHookHandler } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { QueryErrors } from '../errors';
import { profileIdParams } from './params';

export const consentSchema = z
  .object({ personalization: z.boolean().describe('false: opted out (docs/model.md §4.5)') })
  .describe('A person’s consent');
export const erasureStartedSchema = z
  .object({ erasureId: z.string().describe('follow it at GET /v1/erasures/{erasureId}') })
  .describe('An erasure under way');
export const erasureSchema = z
  .object({
    erasureId: z.string(),
    status: z
      .enum(['pending', 'done'])
      .describe('done: gone from Postgres and Redis, every id suppressed, their keys destroyed'),
    requestedAt: z.string(),
    doneAt: z.string().nullable(),
  })
  .describe('Progress of an erasure (docs/api.md §5.7)');

export type PrivacyRouteDeps = {
  pool: Pool;
  log: Logger;
  guard: preHandlerHookHandler;
  keyring: Pick<Keyring, 'shred'>;
  /** The Redis step and `done` (jobs/erasure.ts); a failure leaves the erasure to the retry job. */
  finish: (erasureId: string, ids: string[]) => Promise<void>;
};

const auth = {
  401: errorResponse('Missing or unknown bearer token (QRY_UNAUTHORIZED)', { 'WWW-Authenticate': 'Bearer' }),
  403: errorResponse('The token lacks privacy:write (QRY_FORBIDDEN)'),
};

/** Who asked, for the audit, without keeping the credential: a short digest of the bearer token. */
function requesterOf(authorization: string | undefined): string {
  return `token:${createHash('sha256')
    .update(authorization ?? '')
    .digest('hex')
    .slice(0, 16)}`;
}

/**
 * Consent and erasure (docs/model.md §4.5, docs/api.md §5.7). An erasure is two steps: Postgres in one transaction
 * (rows deleted, ids suppressed, audit row), then Redis (`eraseInterests`), then `done`. When the
 * Redis step fails the erasure stays `pending`; the query API's retry job (jobs/erasure.ts) finishes it.
 */
export function registerPrivacyRoutes(app: FastifyInstance, deps: PrivacyRouteDeps): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  typed.put(
    '/v1/profiles/:id/consent',
    {
      preHandler: deps.guard,
      schema: {
        operationId: 'putConsent',
        tags: ['privacy'],
        summary: 'Opt a person in or out of personalization; opted out, no interest of theirs is served anywhere',
        security: [{ bearerAuth: [] }],
        params: profileIdParams,
        body: z.strictObject({ personalization: z.boolean() }),
        response: {
          200: consentSchema,
          400: errorResponse('Invalid id or body (QRY_INVALID_REQUEST)'),
          ...auth,
          404: errorResponse('No profile for this id (QRY_PROFILE_NOT_FOUND)'),
        },
      },
    },
    async (request, reply) => {
      const found = await setPersonalization(deps.pool, request.params.id, request.body.personalization);
      if (!found) return sendError(reply, 404, QueryErrors.PROFILE_NOT_FOUND, `no profile for id ${request.params.id}`);
      return { personalization: request.body.personalization };
    },
  );
  typed.delete(
    '/v1/profiles/:id',
    {
      preHandler: deps.guard,
      schema: {
        operationId: 'erasePerson',
        tags: ['privacy'],
        summary: 'Erase a person and every id merged into them; the ids stay suppressed for good',
        description:
          'An id nobody knows is suppressed too (its events may still be on their way). The answer comes once Postgres is clean; ' +
          'Redis follows, usually before the answer. Progress: GET /v1/erasures/{erasureId}.',
        security: [{ bearerAuth: [] }],
        params: profileIdParams,
        response: { 202: erasureStartedSchema, 400: errorResponse('Invalid id (QRY_INVALID_REQUEST)'), ...auth },
      },
    },
    async (request, reply) => {
      const started = await erasePerson(
        deps.pool,
        deps.log,
        request.params.id,
        requesterOf(request.headers.authorization),
        Date.now(),
        deps.keyring.shred,
      );
      request.log.info({ erasureId: started.erasureId, ids: started.ids.length }, 'erasure: Postgres done');
      await deps
        .finish(started.erasureId, started.ids)
        .catch((err: unknown) =>
          request.log.warn(
            { erasureId: started.erasureId, err: (err as Error).message },
            'erasure: Redis step failed, will retry',
          ),
        );
      return reply.code(202).send({ erasureId: started.erasureId });
    },
  );
  typed.get(
    '/v1/erasures/:erasureId',
    {
      preHandler: deps.guard,
      schema: {
        operationId: 'getErasure',
        tags: ['privacy'],
        summary: 'Progress of an erasure',
        security: [{ bearerAuth: [] }],
        params: z.object({ erasureId: z.uuid().describe('from DELETE /v1/profiles/{id}') }),
        response: {
          200: erasureSchema,
          400: errorResponse('Not an erasure id (QRY_INVALID_REQUEST)'),
          ...auth,
          404: errorResponse('No such erasure (QRY_ERASURE_NOT_FOUND)'),
        },
      },
    },
    async (request, reply) => {
      const e = await readErasure(deps.pool, request.params.erasureId);
      if (!e) return sendError(reply, 404, QueryErrors.ERASURE_NOT_FOUND, `no erasure ${request.params.erasureId}`);
      return { erasureId: e.id, status: e.status, requestedAt: e.requestedAt, doneAt: e.doneAt };
    },
  );
}
