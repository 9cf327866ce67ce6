import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Scope } from './config';

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * A preHandler that admits requests whose bearer token has `scope`. Tokens are compared in
 * constant time; a write key is never a token because tokens come only from API_TOKENS.
 */
export function createTokenGuard(tokens: Map<string, Set<Scope>>) {
  const entries = [...tokens].map(([token, scopes]) => ({ digest: digest(token), scopes }));
  const scopesOf = (token: string): Set<Scope> | undefined => {
    const d = digest(token);
    let found: Set<Scope> | undefined;
    for (const e of entries) if (timingSafeEqual(d, e.digest)) found = e.scopes;
    return found;
  };
  return (scope: Scope) => async (request: FastifyRequest, reply: FastifyReply) => {
    const auth = request.headers.authorization;
    // The auth scheme is case-insensitive (RFC 9110 §11.1): "bearer x" and "BEARER x" are the same.
    const presented = auth === undefined ? undefined : /^bearer[ \t]+(\S+)[ \t]*$/i.exec(auth)?.[1];
    const scopes = presented === undefined ? undefined : scopesOf(presented);
    if (!scopes) return reply.code(401).header('WWW-Authenticate', 'Bearer').send({ error: 'Unauthorized', message: 'missing or unknown bearer token' });
    if (!scopes.has(scope)) return reply.code(403).send({ error: 'Forbidden', message: `token lacks scope ${scope}` });
  };
}
