import { Counter, type Registry } from 'prom-client';

/**
 * Distinct names kept per source and call type; more are counted as "(other)" so clients cannot grow the series without
 * bound.
 */
export const MAX_NAMES = 100;
const OTHER = '(other)';

export type SegmentCounters = {
  /** A call accepted but put on no topic (a group, a page without a product, an unmapped event name). */
  ignored(source: string, type: string, name: string): void;
  /** A page or screen call that became a click. */
  mapped(source: string, type: string): void;
};

/**
 * `ingest_events_ignored_total{source,type,name}` and `ingest_views_mapped_total{source,type}`,
 * on the service's /metrics registry: which calls count for nothing is worth seeing, since a
 * client hears only `202` for them. Names are cut to 64 characters and capped per source and type.
 */
export function createSegmentCounters(registry: Registry): SegmentCounters {
  const ignored = new Counter({
    name: 'ingest_events_ignored_total',
    help: 'Segment calls accepted but not put on the events topic: group, page/screen naming nothing, identify without userId, unmapped track names',
    labelNames: ['source', 'type', 'name'],
    registers: [registry],
  });
  const mapped = new Counter({
    name: 'ingest_views_mapped_total',
    help: 'Segment page/screen calls that named a product, content or target and became click events',
    labelNames: ['source', 'type'],
    registers: [registry],
  });
  const seen = new Map<string, Set<string>>();
  const bounded = (source: string, type: string, name: string) => {
    const key = `${source}\u0000${type}`;
    const names = seen.get(key) ?? new Set<string>();
    seen.set(key, names);
    const cut = name.slice(0, 64);
    if (names.has(cut)) return cut;
    if (names.size >= MAX_NAMES) return OTHER;
    names.add(cut);
    return cut;
  };
  return {
    ignored: (source, type, name) => ignored.inc({ source, type, name: bounded(source, type, name) }),
    mapped: (source, type) => mapped.inc({ source, type }),
  };
}
