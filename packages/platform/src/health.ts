import type { FastifyInstance } from 'fastify';
import { instrumentHttp, type Registry } from './metrics';
import { withTimeout } from './timeout';

/** A named dependency check: resolves when the dependency answers, rejects otherwise. */
export type ReadinessCheck = { name: string; check: () => Promise<unknown> };

/**
 * `/healthz` (the process is up), `/readyz` (every dependency answers; 503 names the ones that
 * do not) and `/metrics` (Prometheus text) — the same three routes on every service — and the
 * HTTP request metrics of every route of the app.
 */
export function registerOpsRoutes(
  app: FastifyInstance,
  options: { checks: ReadinessCheck[]; metrics: Registry; timeoutMs?: number },
): void {
  const timeoutMs = options.timeoutMs ?? 2000;
  const hide = { schema: { hide: true } };
  instrumentHttp(app, options.metrics);
  app.get('/healthz', hide, async () => ({ status: 'ok' }));
  app.get('/readyz', hide, async (_request, reply) => {
    const results = await Promise.all(
      options.checks.map(async ({ name, check }) => {
        try {
          await withTimeout(check(), timeoutMs, () => new Error(`no answer within ${timeoutMs} ms`));
          return { name, ok: true as const };
        } catch (err) {
          return { name, ok: false as const, error: (err as Error).message };
        }
      }),
    );
    const ready = results.every((r) => r.ok);
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unready', checks: results });
  });
  app.get('/metrics', hide, async (_request, reply) => {
    return reply.type(options.metrics.contentType).send(await options.metrics.metrics());
  });
}
