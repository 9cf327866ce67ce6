import type { FastifyInstance, RouteShorthandOptions } from 'fastify';
import { gauge, instrumentHttp, type Registry } from './metrics';
import { withTimeout } from './timeout';

/** A named dependency check: resolves when the dependency answers, rejects otherwise. */
export type ReadinessCheck = { name: string; check: () => Promise<unknown> };

/** One check's outcome, as `/readyz` lists it. */
export type CheckResult = { name: string; ok: true } | { name: string; ok: false; error: string };

/**
 * Where `/metrics` and `/readyz` get their answers when one instance of a service is several
 * processes (ingest's `node:cluster` workers): every process's registry merged, every process's
 * checks. Without it each answers for its own process.
 */
export type InstanceView = { metrics(): Promise<string>; readiness(): Promise<CheckResult[]> };

/**
 * The readiness check of a service whose work is a Kafka consumer: passes while the consumer is
 * running and no partition is stalled, else fails with the consumer's own reason.
 */
export function consumerCheck(consumer: { unreadyReason(): string | undefined }): ReadinessCheck {
  return {
    name: 'consumer',
    check: async () => {
      const why = consumer.unreadyReason();
      if (why) throw new Error(why);
    },
  };
}

/** Runs every check at once, each bounded by `timeoutMs`; never rejects. */
export function runReadinessChecks(checks: readonly ReadinessCheck[], timeoutMs = 2000): Promise<CheckResult[]> {
  return Promise.all(
    checks.map(async ({ name, check }): Promise<CheckResult> => {
      try {
        await withTimeout(check(), timeoutMs, () => new Error(`no answer within ${timeoutMs} ms`));
        return { name, ok: true };
      } catch (err) {
        return { name, ok: false, error: (err as Error).message };
      }
    }),
  );
}

/**
 * `/healthz` (the process is up), `/readyz` (every dependency answers; 503 names the ones that
 * do not) and `/metrics` (Prometheus text) — the same three routes on every service — and the
 * HTTP request metrics of every route of the app. `/metrics` also carries `readiness_check{check}`
 * (1 when the check passes), run at scrape time, so Prometheus can alert on readiness.
 */
export function registerOpsRoutes(
  app: FastifyInstance,
  options: { checks: ReadinessCheck[]; metrics: Registry; timeoutMs?: number; instance?: InstanceView },
): void {
  const timeoutMs = options.timeoutMs ?? 2000;
  // `hide` is read by @fastify/swagger where a service registers it (the ops routes stay out of
  // the API documents); platform itself does not depend on it, hence the cast.
  const hide = { schema: { hide: true } } as RouteShorthandOptions;
  instrumentHttp(app, options.metrics);
  app.get('/healthz', hide, async () => ({ status: 'ok' }));
  const runChecks = () => runReadinessChecks(options.checks, timeoutMs);
  gauge(options.metrics, {
    name: 'readiness_check',
    help: 'Readiness checks of /readyz, run at scrape time: 1 when the check passes, else 0',
    labelNames: ['check'],
    // Merged across an instance's processes (InstanceView): passing only where every process passes.
    aggregator: 'min',
    async collect() {
      this.reset();
      for (const r of await runChecks()) this.set({ check: r.name }, r.ok ? 1 : 0);
    },
  });
  const instance = options.instance;
  app.get('/readyz', hide, async (_request, reply) => {
    const results = await (instance === undefined
      ? runChecks()
      : instance
          .readiness()
          .catch((err: unknown): CheckResult[] => [{ name: 'instance', ok: false, error: (err as Error).message }]));
    const ready = results.every((r) => r.ok);
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unready', checks: results });
  });
  app.get('/metrics', hide, async (_request, reply) => {
    return reply.type(options.metrics.contentType).send(await (instance?.metrics() ?? options.metrics.metrics()));
  });
}
