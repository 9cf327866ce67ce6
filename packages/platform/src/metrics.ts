import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type Aggregator } from 'prom-client';

export type { Registry } from 'prom-client';

/**
 * prom-client's defaults include three gauges whose names end in `_total`, which Prometheus
 * reserves for counters (`promtool check metrics` flags them). Their per-type siblings
 * (`nodejs_active_handles{type}` …) carry the same numbers, so the totals are dropped.
 */
const MISNAMED_DEFAULTS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/** A metrics registry with the process' default metrics, one per service. */
export function createMetrics(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  for (const name of MISNAMED_DEFAULTS) registry.removeSingleMetric(name);
  return registry;
}

type Spec<L extends string> = { name: string; help: string; labelNames?: readonly L[] };

/**
 * The metric called `name` in `registry`, created on first use: several components (two
 * consumers of one service, a test building an app twice) may ask for the same one, and
 * prom-client refuses to register a name twice.
 */
function once<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

export const counter = <L extends string>(registry: Registry, spec: Spec<L>): Counter<L> =>
  once(
    registry,
    spec.name,
    () => new Counter<L>({ ...spec, labelNames: spec.labelNames ?? [], registers: [registry] }),
  );

export const gauge = <L extends string>(
  registry: Registry,
  spec: Spec<L> & {
    collect?: (this: Gauge<L>) => void | Promise<void>;
    /** How the processes' values merge where several serve one instance (prom-client's; default `sum`). */
    aggregator?: Aggregator;
  },
): Gauge<L> =>
  once(registry, spec.name, () => new Gauge<L>({ ...spec, labelNames: spec.labelNames ?? [], registers: [registry] }));

export const histogram = <L extends string>(registry: Registry, spec: Spec<L> & { buckets?: number[] }): Histogram<L> =>
  once(
    registry,
    spec.name,
    () => new Histogram<L>({ ...spec, labelNames: spec.labelNames ?? [], registers: [registry] }),
  );

/** Seconds, from 1 ms to 10 s: the range of an HTTP request, a Kafka send or a batch apply. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * `http_requests_total` and `http_request_duration_seconds` by route (the route's pattern, never
 * the raw URL, so ids do not explode the label set), method and status.
 */
export function instrumentHttp(app: FastifyInstance, registry: Registry): void {
  const labelNames = ['route', 'method', 'status'] as const;
  const requests = counter(registry, { name: 'http_requests_total', help: 'HTTP requests answered', labelNames });
  const duration = histogram(registry, {
    name: 'http_request_duration_seconds',
    help: 'Time from a request arriving to its response being sent',
    labelNames,
    buckets: LATENCY_BUCKETS,
  });
  // A callback hook, not an async one: no promise and microtask per request
  app.addHook('onResponse', (request, reply, done) => {
    const labels = {
      route: request.routeOptions.url ?? 'unmatched',
      method: request.method,
      status: String(reply.statusCode),
    };
    requests.inc(labels);
    duration.observe(labels, reply.elapsedTime / 1000);
    done();
  });
}
