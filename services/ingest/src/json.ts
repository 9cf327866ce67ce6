import { HttpError } from '@pstream/http';
import type { FastifyRequest } from 'fastify';
import sjson from 'secure-json-parse';
import { IngestErrors } from './errors';

/**
 * A plain JSON object (not null, not an array): the shape every route body and Segment field is checked against first.
 */
export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const bad = (message: string) => new HttpError(400, IngestErrors.MALFORMED, message);

/**
 * The JSON body parser of every route: like Fastify's own (secure-json-parse), but a body with
 * `__proto__` or `constructor.prototype` is refused with a message that says so, rather than
 * a generic "not valid JSON", and a syntax error names where it is.
 */
export function parseJsonBody(
  _request: FastifyRequest,
  body: string | Buffer,
  done: (err: Error | null, value?: unknown) => void,
): void {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  if (text.length === 0) return done(bad('the body is empty'));
  try {
    done(null, sjson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' }));
  } catch (err) {
    const message = (err as Error).message;
    done(
      bad(
        /prototype/i.test(message)
          ? 'the body contains a forbidden prototype property (__proto__ or constructor.prototype)'
          : `the body is not valid JSON: ${message}`,
      ),
    );
  }
}
