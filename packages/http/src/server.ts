import { randomUUID } from 'node:crypto';
import { registerOpsRoutes, type Logger, type ReadinessCheck, type Registry } from '@pstream/platform';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyServerOptions,
} from 'fastify';
import { clientErrorHandler, frameworkErrorsHandler, installErrors, type ErrorOptions } from './errors';

/** A client's own request id is kept when it is a plain token (no log injection, bounded size). */
const CLIENT_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export type HttpOptions = Omit<FastifyServerOptions, 'logger' | 'loggerInstance'> & {
  /** Request deadline (ms): Node answers 408 (our body) when a request has not fully arrived by then. */
  requestTimeoutMs?: number;
};

/**
 * A Fastify instance logging through our pino logger, refusing prototype-poisoning bodies
 * (`__proto__`, `constructor.prototype`) with a 400 rather than stripping them silently, with
 * the one error body on every answer (errors.ts) and one request id per request: the client's
 * `X-Request-Id` when it is a plain token, else a fresh UUID; echoed in `X-Request-Id` and bound
 * to every log line of the request as `requestId`. Per-request log lines are off: at thousands
 * of requests a second they drown everything else; request rates and latencies belong in
 * /metrics, and every error answer is logged once with its request id.
 */
export function createHttp(log: Logger, errors: ErrorOptions, options: HttpOptions = {}): FastifyInstance {
  const { requestTimeoutMs, ...fastifyOptions } = options;
  const app = Fastify({
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    // `request.log` is built when a request first logs, not for every request: most answer without
    // a log line, and a pino child (bindings serialized, redaction set up) cost ~3 % of the query
    // API's CPU per profile read (BENCHMARKS.md "Reads", issue 21).
    childLoggerFactory: (logger, bindings, opts) => new LazyChildLogger(logger, bindings, opts) as FastifyBaseLogger,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && CLIENT_ID.test(given) ? given : randomUUID();
    },
    // A parameter past this is refused by the router (414, in the one error body); one below it by
    // the route's schema when invalid (400). A service may raise it (the query API: URL-encoded ids).
    routerOptions: { maxParamLength: 256 },
    frameworkErrors: frameworkErrorsHandler(errors),
    clientErrorHandler: clientErrorHandler({ ...errors, requestTimeoutMs, newId: randomUUID }),
    ...(requestTimeoutMs !== undefined && {
      requestTimeout: requestTimeoutMs,
      // Passed to http.createServer by Fastify (not in its option types). Node only tracks request
      // deadlines when the server is created with one, and checks them every 30 s by default;
      // check often enough to honour ours.
      ...({
        http: { requestTimeout: requestTimeoutMs, connectionsCheckingInterval: Math.min(1000, requestTimeoutMs) },
      } as object),
    }),
    ...fastifyOptions,
    loggerInstance: log as FastifyBaseLogger,
  });
  // A callback hook, not an async one: no promise and microtask per request for a header
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('X-Request-Id', request.id);
    done();
  });
  installErrors(app, errors);
  return app;
}

type Bindings = Parameters<FastifyBaseLogger['child']>[0];
type ChildLoggerOptions = NonNullable<Parameters<FastifyBaseLogger['child']>[1]>;

/**
 * A request's logger that becomes `parent.child(bindings, opts)` the first time it is used: the
 * same lines, with the same bindings, as the child it stands for.
 */
class LazyChildLogger {
  private made: FastifyBaseLogger | undefined;
  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Bindings,
    private readonly opts: ChildLoggerOptions,
  ) {}
  private get real(): FastifyBaseLogger {
    return (this.made ??= this.parent.child(this.bindings, this.opts));
  }
  get level(): string {
    return this.made?.level ?? this.opts.level ?? this.parent.level;
  }
  set level(level: string) {
    this.real.level = level;
  }
  fatal(...args: unknown[]): void {
    this.log('fatal', args);
  }
  error(...args: unknown[]): void {
    this.log('error', args);
  }
  warn(...args: unknown[]): void {
    this.log('warn', args);
  }
  info(...args: unknown[]): void {
    this.log('info', args);
  }
  debug(...args: unknown[]): void {
    this.log('debug', args);
  }
  trace(...args: unknown[]): void {
    this.log('trace', args);
  }
  silent(...args: unknown[]): void {
    this.log('silent', args);
  }
  private log(level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent', args: unknown[]): void {
    const real = this.real;
    (real[level] as (...a: unknown[]) => void).apply(real, args);
  }
  child(bindings: Bindings, opts?: ChildLoggerOptions): FastifyBaseLogger {
    return this.real.child(bindings, opts);
  }
}

/** The request deadline of a stream processor's ops port (ms). */
export const OPS_REQUEST_TIMEOUT_MS = 10_000;

/** The HTTP face of a stream processor: health, readiness and metrics only, with the one error body. */
export async function buildOpsApp(deps: {
  log: Logger;
  checks: ReadinessCheck[];
  metrics: Registry;
  prefix: string;
}): Promise<FastifyInstance> {
  // Ops routes take no body; the deadline still frees sockets of clients that never finish a request.
  const app = createHttp(deps.log, { prefix: deps.prefix }, { requestTimeoutMs: OPS_REQUEST_TIMEOUT_MS });
  registerOpsRoutes(app, deps);
  return app;
}
