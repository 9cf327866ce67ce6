import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Logger } from 'pino';
import { registerOpsRoutes, type ReadinessCheck } from './health';
import type { Registry } from './metrics';

/**
 * A Fastify instance logging through our pino logger, refusing prototype-poisoning bodies
 * (`__proto__`, `constructor.prototype`) with a 400 rather than stripping them silently.
 * Per-request log lines are off: at thousands of requests a second they drown everything else;
 * request rates and latencies belong in /metrics, and errors are still logged by the handlers.
 */
export function createHttp(log: Logger, options: Omit<FastifyServerOptions, 'logger' | 'loggerInstance'> = {}): FastifyInstance {
  return Fastify({
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    logController: new LogController({ disableRequestLogging: true }),
    ...options,
    loggerInstance: log as FastifyBaseLogger,
  });
}

/** The HTTP face of a stream processor: health, readiness and metrics only. */
export async function buildOpsApp(deps: { log: Logger; checks: ReadinessCheck[]; metrics: Registry }): Promise<FastifyInstance> {
  const app = createHttp(deps.log);
  registerOpsRoutes(app, deps);
  return app;
}
