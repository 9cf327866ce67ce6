import { personIdSchema, unstorableString } from '@pstream/events';
import { z } from 'zod';

/**
 * `{id}` in a profile path: exactly the ids ingest accepts (1-128 characters, no control
 * characters or lone surrogates), URL-decoded. Anything else — `%00`, an empty or over-long id —
 * is a 400 naming the parameter, never a query that Postgres refuses with a 500.
 */
export const profileIdParams = z.object({
  id: personIdSchema
    .superRefine((id, ctx) => {
      const why = unstorableString(id);
      if (why !== undefined) ctx.addIssue({ code: 'custom', message: why });
    })
    .describe('userId or anonymousId, 1-128 characters (URL-encoded)'),
});

/**
 * Longest `{id}` path segment the router accepts, URL-encoded: 128 characters of up to 4 UTF-8
 * bytes, each written as %XX. Fastify's default (100) answered 414 for valid ids of 101-128 characters.
 */
export const MAX_ID_PARAM_LENGTH = 128 * 4 * 3;

/** `cursor` of a paged route: the `nextCursor` of the previous page, opaque to the caller. */
export const cursorParam = z.string().max(1024).optional().describe('nextCursor of the previous page');

/** A page's position as an opaque cursor (base64url of the text). */
export const encodeCursor = (text: string) => Buffer.from(text, 'utf8').toString('base64url');

/** The text of a cursor this API gave out, or undefined for anything else (answered `400 QRY_INVALID_CURSOR`). */
export function decodeCursor(cursor: string): string | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) return undefined;
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  return text.length > 0 && encodeCursor(text) === cursor && unstorableString(text) === undefined ? text : undefined;
}
