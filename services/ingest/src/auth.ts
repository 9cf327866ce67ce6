import { createHash, timingSafeEqual } from 'node:crypto';
import { createSecretLookup } from '@pstream/http';
import type { FastifyRequest } from 'fastify';

/** The write key a request carries: HTTP Basic username (Segment style) or `X-Write-Key`. */
export function presentedWriteKey(request: FastifyRequest): string | undefined {
  const header = request.headers['x-write-key'];
  if (typeof header === 'string' && header.length > 0) return header;
  const auth = request.headers.authorization;
  // The scheme name is case-insensitive (RFC 9110 §11.1): `basic` is Basic.
  if (auth !== undefined && /^basic /i.test(auth)) {
    const decoded = Buffer.from(auth.slice(6), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon < 0 ? decoded : decoded.slice(0, colon);
  }
  return undefined;
}

/** Finds the source of a write key, in constant time (@pstream/http's `createSecretLookup`). */
export const createWriteKeyCheck = (keys: Map<string, string>) => createSecretLookup(keys);

const digest = (s: string) => createHash('sha256').update(s).digest();

/** True when two write keys are the same, compared in constant time over their digests. */
export function sameKey(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}
