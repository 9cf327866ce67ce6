import { STATUS_CODES } from 'node:http';
import { AppError, fieldErrors, type FieldError } from '@pstream/platform';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';

/** One problem with an input, as `details` and ingest's rejected items list them. */
export const fieldErrorSchema = z
  .object({
    path: z.string().describe('JSON path in the input, e.g. "tags.3" or "querystring.limit"; "" for the whole'),
    message: z.string(),
  })
  .describe('One problem with an input: where and what.');

/**
 * The one error body of every route of every service, Fastify's own errors included:
 * `{ "error": { "code", "message", "details"? } }`. `code` is service-prefixed (`ING_`, `QRY_`,
 * `SCR_`, `SEG_`) and listed in the service's README; `message` is for people; `details` is
 * structured (field errors, rejected items) when there is something to add.
 */
export const errorBodySchema = z
  .object({
    error: z.object({
      code: z.string().describe('service-prefixed code from the documented list, e.g. ING_MALFORMED'),
      message: z.string().describe('what went wrong, for people'),
      details: z.unknown().optional().describe('structured detail when there is some: field errors, rejected items'),
    }),
  })
  .describe('The error body of every route: a code from the service’s documented list, a message, optional details.');
export type ErrorBody = z.output<typeof errorBodySchema>;

/**
 * The errors every service can answer, whatever its routes: the HTTP framework's own (no route,
 * wrong method, URL or body unusable) and the fixed 500. A service's list is these under its
 * prefix plus its own (`httpErrors('ING')` → `{ NOT_FOUND: 'ING_NOT_FOUND', … }`).
 */
export const HTTP_ERRORS = {
  /** 400: the body is not JSON (or empty when JSON is announced), or the URL is not decodable. */
  MALFORMED: 'MALFORMED',
  /** 400: params, query or body do not meet the route's schema; `details` lists `{ path, message }`. */
  INVALID_REQUEST: 'INVALID_REQUEST',
  /** 400 and other 4xx without a more precise code. */
  BAD_REQUEST: 'BAD_REQUEST',
  /** 404: no route for this path. */
  NOT_FOUND: 'NOT_FOUND',
  /** 405: the path exists, the method does not; the `Allow` header lists the methods. */
  METHOD_NOT_ALLOWED: 'METHOD_NOT_ALLOWED',
  /** 408: the request did not fully arrive in time. */
  REQUEST_TIMEOUT: 'REQUEST_TIMEOUT',
  /** 413: the body is over the limit. */
  TOO_LARGE: 'TOO_LARGE',
  /** 414: a path parameter is over the router's length limit. */
  URI_TOO_LONG: 'URI_TOO_LONG',
  /** 415: a Content-Type (or Content-Encoding) the route does not read. */
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  /** 431: the request's headers are over Node's limit. */
  HEADERS_TOO_LARGE: 'HEADERS_TOO_LARGE',
  /** 500: a bug; the body is fixed, the error is logged with the request id. */
  INTERNAL: 'INTERNAL',
} as const;
type HttpErrorName = keyof typeof HTTP_ERRORS;

/** The framework's error codes under a service prefix. */
export function httpErrors<P extends string>(prefix: P): { [K in HttpErrorName]: `${P}_${(typeof HTTP_ERRORS)[K]}` } {
  return Object.fromEntries(Object.entries(HTTP_ERRORS).map(([k, v]) => [k, `${prefix}_${v}`])) as never;
}

/** An error a handler or hook throws to answer with a given status, code and details. */
export class HttpError extends AppError {
  constructor(
    readonly statusCode: number,
    code: string,
    message: string,
    readonly details?: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(code, message);
  }
}

/** How a service maps its own errors (e.g. Kafka unavailable → 503 with Retry-After); undefined: not one of its own. */
export type ErrorClassifier = (err: Error) => HttpError | undefined;

export type ErrorOptions = {
  /** Service prefix of every code (`ING`, `QRY`, `SCR`, `SEG`). */
  prefix: string;
  classify?: ErrorClassifier;
};

/**
 * Sends the error body. Every error answer goes through here, so each is logged once with the
 * request id (4xx at info: the client's problem; 5xx at error, with the cause, by the handler).
 */
export function sendError(
  reply: FastifyReply,
  status: number,
  code: string,
  message: string,
  details?: unknown,
): FastifyReply {
  if (status < 500) reply.request.log.info({ status, code }, 'request refused');
  const body: ErrorBody = { error: { code, message, ...(details !== undefined && { details }) } };
  return reply.code(status).type('application/json; charset=utf-8').send(body);
}

/** The status and code of one of Fastify's own errors (body parsing, validation, routing), if it is one. */
function frameworkError(
  err: FastifyError & { validation?: unknown; validationContext?: string },
  codes: ReturnType<typeof httpErrors>,
) {
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return {
        status: 415,
        code: codes.UNSUPPORTED_MEDIA_TYPE,
        message: 'unsupported Content-Type; send application/json',
      };
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, code: codes.TOO_LARGE, message: 'the body is over the size limit' };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_BAD_URL':
      return { status: 400, code: codes.MALFORMED, message: err.message };
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return { status: 414, code: codes.URI_TOO_LONG, message: 'a path parameter is too long' };
  }
  if (Array.isArray(err.validation)) {
    return {
      status: 400,
      code: codes.INVALID_REQUEST,
      message: err.message,
      details: validationDetails(err.validation, err.validationContext),
    };
  }
  return undefined;
}

/** Field errors of a schema validation failure, paths prefixed by where they were (`querystring.limit`). */
function validationDetails(validation: unknown[], context: string | undefined): FieldError[] {
  const issues = validation.map((v) => {
    const entry = v as {
      instancePath?: string;
      message?: string;
      params?: { issue?: { path?: PropertyKey[]; message?: string } };
    };
    const issue = entry.params?.issue;
    const path = issue?.path ?? (entry.instancePath ?? '').split('/').filter(Boolean);
    return { path: [...(context ? [context] : []), ...path], message: issue?.message ?? entry.message ?? 'is invalid' };
  });
  return fieldErrors(issues);
}

/** A route pattern (`/v1/profiles/:id`, `/docs/*`) as a regular expression over paths. */
function patternOf(url: string): RegExp {
  const source = url
    .split('/')
    .map((part) => (part === '*' ? '.*' : part.startsWith(':') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${source}/?$`);
}

/**
 * Installs the one error body on `app`: the error handler (its own errors, Fastify's, the
 * service's via `classify`, a fixed 500), the not-found handler (404, or 405 with `Allow` when the
 * path exists under other methods). Called by `createHttp` before any route is added, so the
 * route list for 405 is complete.
 */
export function installErrors(app: FastifyInstance, options: ErrorOptions): void {
  const codes = httpErrors(options.prefix);
  const routes: { pattern: RegExp; methods: string[] }[] = [];
  app.addHook('onRoute', (route) => {
    // OPTIONS routes are CORS preflights (ingest answers them on /v1/*): they make no path "exist".
    const methods = (Array.isArray(route.method) ? route.method : [route.method]).filter((m) => m !== 'OPTIONS');
    if (methods.length > 0) routes.push({ pattern: patternOf(route.url), methods });
  });

  app.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const own = options.classify?.(err) ?? (err instanceof HttpError ? err : undefined);
    if (own) {
      if (own.statusCode >= 500) request.log.warn({ err, code: own.code }, 'request failed');
      for (const [name, value] of Object.entries(own.headers)) reply.header(name, value);
      return sendError(reply, own.statusCode, own.code, own.message, own.details);
    }
    const framework = frameworkError(err, codes);
    if (framework) return sendError(reply, framework.status, framework.code, framework.message, framework.details);
    const status = err.statusCode ?? 500;
    if (status >= 500) {
      // Named fields only: the request object would carry its raw headers (Authorization,
      // X-Write-Key) and body (ingest's writeKey) into the log.
      request.log.error({ err, method: request.method, url: request.url.split('?')[0] }, 'request failed');
      return sendError(reply, 500, codes.INTERNAL, 'internal error');
    }
    const code =
      status === 413
        ? codes.TOO_LARGE
        : status === 415
          ? codes.UNSUPPORTED_MEDIA_TYPE
          : status === 400
            ? codes.MALFORMED
            : codes.BAD_REQUEST;
    return sendError(reply, status, code, err.message);
  });

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    const allowed = [...new Set(routes.filter((r) => r.pattern.test(path)).flatMap((r) => r.methods))];
    // A route that takes this method but found nothing (a missing static file) is a 404, not a 405.
    if (allowed.length > 0 && !allowed.includes(request.method)) {
      reply.header('Allow', allowed.join(', '));
      return sendError(
        reply,
        405,
        codes.METHOD_NOT_ALLOWED,
        `${request.method} is not allowed on ${path}; allowed: ${allowed.join(', ')}`,
      );
    }
    return sendError(reply, 404, codes.NOT_FOUND, `no route ${request.method} ${path}`);
  });
}

/**
 * Fastify's `frameworkErrors` option: errors raised before routing (an undecodable URL, a path
 * parameter over the length limit) get the same body instead of Fastify's own.
 */
export function frameworkErrorsHandler(options: ErrorOptions) {
  const codes = httpErrors(options.prefix);
  return (err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    reply.header('X-Request-Id', request.id);
    const framework = frameworkError(err, codes) ?? { status: 400, code: codes.BAD_REQUEST, message: err.message };
    return sendError(reply, framework.status, framework.code, framework.message);
  };
}

/**
 * Node's `clientError`: a request too broken or too slow to reach Fastify (malformed HTTP, headers
 * over the limit, the whole request not in within the timeout) is answered on the socket with the
 * same body and a fresh request id, then the connection closes.
 */
export function clientErrorHandler(options: ErrorOptions & { requestTimeoutMs?: number; newId: () => string }) {
  const codes = httpErrors(options.prefix);
  return (
    err: Error & { code?: string },
    socket: { writable: boolean; end: (data: string) => void; destroy: () => void },
  ) => {
    const [status, code, message] =
      err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [
            408,
            codes.REQUEST_TIMEOUT,
            options.requestTimeoutMs
              ? `the request did not arrive within ${options.requestTimeoutMs} ms`
              : 'the request did not arrive in time',
          ]
        : err.code === 'HPE_HEADER_OVERFLOW'
          ? [431, codes.HEADERS_TOO_LARGE, 'the request headers are too large']
          : [400, codes.MALFORMED, 'malformed HTTP request'];
    if (!socket.writable) return socket.destroy();
    const body = JSON.stringify({ error: { code, message } } satisfies ErrorBody);
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `X-Request-Id: ${options.newId()}\r\nConnection: close\r\n\r\n${body}`,
    );
  };
}
