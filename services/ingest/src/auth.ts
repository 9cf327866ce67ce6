import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** The write key a request carries: HTTP Basic username (Segment style) or `X-Write-Key`. */
export function presentedWriteKey(request: FastifyRequest): string | undefined {
  const header = request.headers['x-write-key'];
  if (typeof header === 'string' && header.length > 0) return header;
  const auth = request.headers.authorization;
  if (auth?.startsWith('Basic ')) {
    const decoded = Buffer.from(auth.slice(6), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon < 0 ? decoded : decoded.slice(0, colon);
  }
  return undefined;
}

/**
 * Finds the source of a write key. Every configured key is compared, each in constant time over
 * fixed-length digests, so response timing reveals neither which key nor how much of it matched.
 */
export function createWriteKeyCheck(keys: Map<string, string>): (presented: string | undefined) => string | undefined {
  const entries = [...keys].map(([key, source]) => ({ digest: digest(key), source }));
  return (presented) => {
    if (presented === undefined) return undefined;
    const d = digest(presented);
    let source: string | undefined;
    for (const entry of entries) if (timingSafeEqual(d, entry.digest)) source = entry.source;
    return source;
  };
}

/** True when two write keys are the same, compared in constant time over their digests. */
export function sameKey(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}
