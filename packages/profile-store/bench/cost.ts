import { pruneExpired } from '../src';
import { applyTimed, benchSchema } from './apply';
import { demoTraffic } from './traffic';

export type PgCostFigures = {
  people: number;
  events: number;
  /** Apply rate while filling (the segmenter's apply path, 500 events per transaction). */
  eventsPerSecond: number;
  /** Rows the retention pass removed before measuring. */
  pruned: number;
  /** pg_total_relation_size (heap, indexes, TOAST) per table, after retention and VACUUM FULL. */
  tables: Record<string, number>;
  bytes: number;
  bytesPerPerson: number;
  bytesPerEvent: number;
};

/**
 * Postgres cost at one size: fills a fresh schema with `people` people of the demo's kind of
 * traffic (about 12 events each over 160 days) through the real apply path, runs retention
 * (RETENTION_DAYS 365, DEDUPE_WINDOW_HOURS 72, event time taken as receive time), empties the
 * outbox (the relay's job), compacts, and measures every table. The apply rate of the last tenth of the fill shows the
 * rate at that size.
 */
export async function runPgCost(opts: {
  databaseUrl: string;
  people: number;
  print?: (line: string) => void;
}): Promise<PgCostFigures> {
  const print = opts.print ?? (() => undefined);
  const box = await benchSchema(opts.databaseUrl, 'cost');
  try {
    const nowMs = Date.now();
    let events = 0;
    let seconds = 0;
    let lastTenth = { events: 0, seconds: 0 };
    let block = 0;
    for (const chunk of demoTraffic({ people: opts.people, nowMs, seed: 3 })) {
      const s = await applyTimed(box.store, chunk, nowMs, `fill-${block++}`);
      events += chunk.length;
      seconds += s;
      if (events > 0.9 * opts.people * 13)
        lastTenth = { events: lastTenth.events + chunk.length, seconds: lastTenth.seconds + s };
      if (block % 50 === 0) print(`  ${events} events applied, ${Math.round(events / seconds)} events/s`);
    }
    let pruned = 0;
    for (;;) {
      const p = await pruneExpired(box.pool, nowMs, { dedupeWindowHours: 72, retentionDays: 365 }, 50_000, 60_000);
      const n = p.applied_events + p.activity_daily + p.tag_activity_daily;
      pruned += n;
      if (n === 0) break;
    }
    // The outbox relay would have sent the transitions by now.
    await box.pool.query('DELETE FROM lifecycle_outbox');
    const tablesSql = `SELECT c.relname AS t, pg_total_relation_size(c.oid) AS b FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY 2 DESC`;
    // Compacted one table at a time, this schema's only (a bare VACUUM FULL would take the whole database).
    for (const r of (await box.pool.query<{ t: string }>(tablesSql, [box.schema])).rows)
      await box.pool.query(`VACUUM FULL ${box.schema}.${r.t}`);
    const { rows } = await box.pool.query<{ t: string; b: string }>(tablesSql, [box.schema]);
    const tables = Object.fromEntries(rows.map((r) => [r.t, Number(r.b)]));
    const bytes = rows.reduce((s, r) => s + Number(r.b), 0);
    const rate = lastTenth.events > 0 ? lastTenth.events / lastTenth.seconds : events / seconds;
    return {
      people: opts.people,
      events,
      eventsPerSecond: rate,
      pruned,
      tables,
      bytes,
      bytesPerPerson: bytes / opts.people,
      bytesPerEvent: bytes / events,
    };
  } finally {
    await box.drop();
  }
}

/** Formats figures as BENCHMARKS.md rows. */
export function costTable(figures: readonly PgCostFigures[]): string {
  const kb = (b: number) => (b / 1024).toFixed(2);
  const lines = [
    '| people | events | apply events/s (last tenth of the fill) | Postgres total | per person | per event | largest tables |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const f of figures) {
    const top = Object.entries(f.tables)
      .slice(0, 4)
      .map(([t, b]) => `${t} ${kb(b / f.people)} KB`)
      .join(', ');
    lines.push(
      `| ${f.people} | ${f.events} | ${Math.round(f.eventsPerSecond)} | ${(f.bytes / 1048576).toFixed(1)} MB | ${kb(f.bytesPerPerson)} KB | ${f.bytesPerEvent.toFixed(0)} B | ${top} (per person) |`,
    );
  }
  return lines.join('\n');
}
