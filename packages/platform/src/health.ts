import type { FastifyInstance, RouteShorthandOptions } from 'fastify';
import { gauge, instrumentHttp, type Registry } from './metrics';
import { withTimeout } from './timeout';

/** A named dependency check: resolves when the dependency answers, rejects otherwise. */
export type ReadinessCheck = { name: string; check: () => Promise<unknown> };

/**
 * `/healthz` (the process is up), `/readyz` (every dependency answers; 503 names the ones that
 * do not) and `/metrics` (Prometheus text) — the same three routes on every service — and the
 * HTTP request metrics of every route of the app. `/metrics` also carries `readiness_check{check}`
 * (1 when the check passes), run at scrape time, so Prometheus can alert on readiness.
 */
export function registerOpsRoutes(
  app: FastifyInstance,
  options: { checks: ReadinessCheck[]; metrics: Registry; timeoutMs?: number },
): void {
  const timeoutMs = options.timeoutMs ?? 2000;
  // `hide` is read by @fastify/swagger where a service registers it (the ops routes stay out of
  // the API documents); platform itself does not depend on it, hence the cast.
  const hide = { schema: { hide: true } } as RouteShorthandOptions;
  instrumentHttp(app, options.metrics);
  app.get('/healthz', hide, async () => ({ status: 'ok' }));
  const runChecks = () =>
    Promise.all(
      options.checks.map(async ({ name, check }) => {
        try {
          await withTimeout(check(), timeoutMs, () => new Error(`no answer within ${timeoutMs} ms`));
          return { name, ok: true as const };
        } catch (err) {
          return { name, ok: false as const, error: (err as Error).message };
        }
      }),
    );
  gauge(options.metrics, {
    name: 'readiness_check',
    help: 'Readiness checks of /readyz, run at scrape time: 1 when the check passes, else 0',
    labelNames: ['check'],
    async collect() {
      this.reset();
      for (const r of await runChecks()) this.set({ check: r.name }, r.ok ? 1 : 0);
    },
  });
  app.get('/readyz', hide, async (_request, reply) => {
    const results = await runChecks();
    const ready = results.every((r) => r.ok);
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unready', checks: results });
  });
  app.get('/metrics', hide, async (_request, reply) => {
    return reply.type(options.metrics.contentType).send(await options.metrics.metrics());
  });
}
