import { createSecretLookup, sendError } from '@pstream/http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Scope } from './config';
import { QueryErrors } from './errors';

/**
 * A preHandler that admits requests whose bearer token has `scope`. Tokens are compared in
 * constant time; a write key is never a token because tokens come only from API_TOKENS.
 */
export function createTokenGuard(tokens: Map<string, Set<Scope>>) {
  const scopesOf = createSecretLookup(tokens);
  return (scope: Scope) => async (request: FastifyRequest, reply: FastifyReply) => {
    const auth = request.headers.authorization;
    const scopes = auth?.startsWith('Bearer ') ? scopesOf(auth.slice(7).trim()) : undefined;
    if (!scopes) return sendError(reply.header('WWW-Authenticate', 'Bearer'), 401, QueryErrors.UNAUTHORIZED, 'missing or unknown bearer token');
    if (!scopes.has(scope)) return sendError(reply, 403, QueryErrors.FORBIDDEN, `token lacks scope ${scope}`);
  };
}
