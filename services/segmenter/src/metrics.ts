import { counter, gauge, histogram, type Registry } from '@pstream/platform';
import type { Pruned, Transition } from '@pstream/profile-store';

/**
 * The segmenter's own metrics (the consume loop's are in @pstream/platform): lifecycle
 * transitions by from/to, sweep duration and people reviewed, rows pruned by retention, and the outbox backlog, read
 * from Postgres at scrape time; identity links refused by the merged-id cap (docs/model.md §4.4).
 */
export function segmenterMetrics(registry: Registry, outbox: { backlog(): Promise<number> }) {
  const transitions = counter(registry, {
    name: 'segmenter_transitions_total',
    help: 'Lifecycle stage changes, by from and to stage ("none" for a first stage)',
    labelNames: ['from', 'to'],
  });
  const sweepSeconds = histogram(registry, {
    name: 'segmenter_sweep_duration_seconds',
    help: 'Time of one sweep (changes caused by time alone, then the audience refresh); the retention pass after it is not included',
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60],
  });
  const reviewed = counter(registry, {
    name: 'segmenter_sweep_people_reviewed_total',
    help: 'People the sweep re-evaluated',
  });
  const pruned = counter(registry, {
    name: 'segmenter_retention_pruned_rows_total',
    help: 'Rows the retention pass removed: expired dedupe records and daily aggregates past RETENTION_DAYS, by table',
    labelNames: ['table'],
  });
  const refused = counter(registry, {
    name: 'segmenter_links_refused_total',
    help: 'Identity links refused, by reason (merged_id_cap: the profile would pass MAX_MERGED_IDS merged ids)',
    labelNames: ['reason'],
  });
  gauge(registry, {
    name: 'segmenter_outbox_backlog',
    help: 'Lifecycle transitions written but not yet sent to the lifecycle topic',
    async collect() {
      this.set(await outbox.backlog());
    },
  });
  return {
    transitions(list: readonly Transition[]): void {
      for (const t of list) transitions.inc({ from: t.from ?? 'none', to: t.to });
    },
    refusedLinks(n: number): void {
      if (n > 0) refused.inc({ reason: 'merged_id_cap' }, n);
    },
    pruned(rows: Pruned): void {
      for (const [table, n] of Object.entries(rows)) pruned.inc({ table }, n);
    },
    swept(people: number, seconds: number): void {
      reviewed.inc(people);
      sweepSeconds.observe(seconds);
    },
  };
}

export type SegmenterMetrics = ReturnType<typeof segmenterMetrics>;
