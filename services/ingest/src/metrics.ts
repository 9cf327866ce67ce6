import { AppError, counter, gauge, histogram, LATENCY_BUCKETS, type Registry } from '@pstream/platform';
import { EVENT_TOO_LARGE, type Sorted } from './accept';
import { IngestErrors } from './errors';
import type { Publisher } from './publisher';

/**
 * Ingest's own metrics (requests by route and status come from @pstream/platform): events
 * accepted, rejected by reason (`invalid`, `too_large` — by our limits or the broker's —, or
 * `unavailable` when Kafka did not acknowledge them and the client got a 503), Kafka produce
 * latency, the breaker's state and how many processes (workers) the scrape covers.
 */
export function ingestMetrics(registry: Registry, publisher: Publisher) {
  const accepted = counter(registry, {
    name: 'ingest_events_accepted_total',
    help: 'Items put on the events topic (acknowledged by Kafka) and answered 202; accepted calls that became nothing are in ingest_events_ignored_total',
    labelNames: ['source'],
  });
  const rejected = counter(registry, {
    name: 'ingest_events_rejected_total',
    help: 'Items not accepted, by reason: invalid, too_large, unavailable (Kafka did not acknowledge)',
    labelNames: ['source', 'reason'],
  });
  const produce = histogram(registry, {
    name: 'ingest_produce_duration_seconds',
    help: 'Time from handing a request’s records to the publisher until Kafka acknowledged them (or the send failed)',
    labelNames: ['outcome'],
    buckets: LATENCY_BUCKETS,
  });
  gauge(registry, {
    name: 'ingest_kafka_breaker_open',
    help: '1 while the Kafka breaker is open (requests answered 503 at once), else 0',
    // Each worker has its own producer and breaker (src/workers.ts): open in any of them shows.
    aggregator: 'max',
    collect() {
      this.set(publisher.isOpen?.() ? 1 : 0);
    },
  });
  gauge(registry, {
    name: 'ingest_processes',
    help: 'Processes whose figures this scrape holds: 1, or the workers that answered (INGEST_WORKERS)',
  }).set(1);
  return {
    /** Publishes a request's accepted records, counting what happened to each item. */
    async publish(source: string, sorted: Sorted): Promise<void> {
      for (const r of sorted.rejected) {
        rejected.inc({
          source,
          reason: r.errors.every((e) => e.message === EVENT_TOO_LARGE) ? 'too_large' : 'invalid',
        });
      }
      // Accepted items that became no message (ignored Segment calls) are counted by segment-counters.ts.
      const published = sorted.accepted - sorted.ignored.length;
      if (sorted.records.length === 0) return;
      const end = produce.startTimer();
      try {
        await publisher.publish(sorted.records);
      } catch (err) {
        end({ outcome: 'error' });
        rejected.inc(
          {
            source,
            reason: err instanceof AppError && err.code === IngestErrors.TOO_LARGE ? 'too_large' : 'unavailable',
          },
          published,
        );
        throw err;
      }
      end({ outcome: 'ok' });
      accepted.inc({ source }, published);
    },
  };
}

export type IngestMetrics = ReturnType<typeof ingestMetrics>;
