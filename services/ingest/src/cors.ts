import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * Which browser origins may post to ingest (CORS). A write key in a web page is public, so this
 * is not secrecy: it keeps other sites' pages from sending events with your key through their
 * visitors' browsers. Origins come from `CORS_ORIGINS` (every key) and `CORS_ORIGINS_BY_KEY`.
 * Credentials are never allowed: tracking needs no cookies, and without them an allowed origin
 * can post events but never read anything as the visitor.
 */
export type OriginPolicy = {
  /** True when some write key accepts `origin`: a preflight (which carries no key) may pass. */
  anyKey(origin: string): boolean;
  /** True when `key` accepts `origin`. */
  forKey(key: string, origin: string): boolean;
};

const digest = (s: string) => createHash('sha256').update(s).digest();

export function createOriginPolicy(
  global: readonly string[],
  byKey: ReadonlyMap<string, readonly string[]>,
): OriginPolicy {
  const everyOrigin = global.includes('*');
  const globalSet = new Set(global);
  // Keyed by digest and compared in constant time, like the write keys themselves (auth.ts).
  const perKey = [...byKey].map(([key, list]) => ({
    digest: digest(key),
    any: list.includes('*'),
    origins: new Set(list),
  }));
  const anyKeyOrigins = new Set(perKey.flatMap((k) => [...k.origins]));
  const anyKeyAll = perKey.some((k) => k.any);
  return {
    anyKey: (origin) => everyOrigin || anyKeyAll || globalSet.has(origin) || anyKeyOrigins.has(origin),
    forKey(key, origin) {
      if (everyOrigin || globalSet.has(origin)) return true;
      const d = digest(key);
      let allowed = false;
      for (const k of perKey) if (timingSafeEqual(d, k.digest) && (k.any || k.origins.has(origin))) allowed = true;
      return allowed;
    },
  };
}

/**
 * The request's `Origin`, lower-cased, when it is a cross-origin browser request; undefined for
 * server-side clients (no Origin) and for same-origin pages such as ingest's own /docs (the
 * Origin's host is the Host the request was sent to).
 */
export function crossOrigin(request: FastifyRequest): string | undefined {
  const origin = request.headers.origin;
  if (typeof origin !== 'string' || origin === '') return undefined;
  const lower = origin.toLowerCase();
  const host = lower.replace(/^[a-z][a-z0-9+.-]*:\/\//, '');
  return host === request.headers.host?.toLowerCase() ? undefined : lower;
}

/** Lets the browser read the response: the allowed origin echoed, never `*`, never credentials. */
export function allowOrigin(reply: FastifyReply, origin: string): void {
  reply.header('Access-Control-Allow-Origin', origin).header('Vary', 'Origin');
}

/** Request headers a preflight may ask for: a comma-separated list of header names. */
const HEADER_LIST = /^[A-Za-z0-9-]+(\s*,\s*[A-Za-z0-9-]+)*$/;
/** What analytics.js and plain fetch() send; allowed when a preflight does not list its own. */
const DEFAULT_HEADERS = 'Authorization, Content-Type, Content-Encoding, X-Write-Key, X-Retry-Count';

/**
 * Answers a CORS preflight. It carries no write key (browsers never send one on a preflight), so it
 * passes when any key accepts the origin; the POST that follows is checked against its own key.
 */
export function answerPreflight(request: FastifyRequest, reply: FastifyReply, origin: string): FastifyReply {
  const asked = request.headers['access-control-request-headers'];
  allowOrigin(reply, origin);
  return reply
    .code(204)
    .header('Vary', 'Origin, Access-Control-Request-Headers')
    .header('Access-Control-Allow-Methods', 'POST, OPTIONS')
    .header(
      'Access-Control-Allow-Headers',
      typeof asked === 'string' && HEADER_LIST.test(asked) ? asked : DEFAULT_HEADERS,
    )
    .header('Access-Control-Max-Age', '600')
    .send();
}
