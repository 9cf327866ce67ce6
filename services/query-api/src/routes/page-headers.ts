import type { FastifyReply } from 'fastify';

/**
 * Headers of the HTML pages (/merchant, /ops): scripts, styles and data only from this origin, no
 * plugins, no framing by other sites (clickjacking), and no content-type sniffing.
 */
const PAGE_HEADERS = {
  'Content-Security-Policy':
    "default-src 'self'; script-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
} as const;

export const withPageHeaders = (reply: FastifyReply): FastifyReply => reply.headers(PAGE_HEADERS);

/** `setHeaders` of the pages' static assets (@fastify/static): no content-type sniffing. */
export const assetHeaders = (res: { setHeader(name: string, value: string): unknown }): void =>
  void res.setHeader('X-Content-Type-Options', 'nosniff');
