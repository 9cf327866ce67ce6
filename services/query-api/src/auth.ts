import { createSecretLookup, sendError } from '@pstream/http';
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import type { Scope } from './config';
import { QueryErrors } from './errors';

/**
 * A preHandler that admits requests whose bearer token has `scope`. Tokens are compared in
 * constant time; a write key is never a token because tokens come only from API_TOKENS.
 */
export function createTokenGuard(tokens: Map<string, Set<Scope>>) {
  const scopesOf = createSecretLookup(tokens);
  // A callback hook, not an async one (no promise and microtask per request): it answers the
  // refusal itself and then never calls `done`, which ends the request's hooks (Fastify's rule).
  return (scope: Scope) => (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    const auth = request.headers.authorization;
    // The auth scheme is case-insensitive (RFC 9110 §11.1): "bearer x" and "BEARER x" are the same.
    const presented = auth === undefined ? undefined : /^bearer[ \t]+(\S+)[ \t]*$/i.exec(auth)?.[1];
    const scopes = presented === undefined ? undefined : scopesOf(presented);
    if (!scopes)
      sendError(
        reply.header('WWW-Authenticate', 'Bearer'),
        401,
        QueryErrors.UNAUTHORIZED,
        'missing or unknown bearer token',
      );
    else if (!scopes.has(scope)) sendError(reply, 403, QueryErrors.FORBIDDEN, `token lacks scope ${scope}`);
    else done();
  };
}
