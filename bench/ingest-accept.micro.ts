/*
 * Microbench (not a pnpm script): ingest's per-event work before the cipher, in-process — a POST body of the
 * pipeline's traffic (scripts/demo-traffic.ts, 100 events) parsed, each event normalized and serialized
 * (`sortItems` with `normalizeEvent`, as `POST /v1/events` does). Prints µs of CPU (`process.cpuUsage`) per event
 * for ROUNDS rounds of BODIES bodies; run it in two worktrees alternately to compare code.
 */
import { sortItems } from '../services/ingest/src/accept';
import { normalizeEvent } from '../services/ingest/src/dialects';
import { createDemoTraffic } from '../scripts/demo-traffic';

const BODIES = Number(process.env.BODIES ?? 400);
const ROUNDS = Number(process.env.ROUNDS ?? 7);
const { people, session, pick } = createDemoTraffic(11, 20_000);
const live = people.filter((p) => p.lastActiveDaysAgo < 10);
const events: unknown[] = [];
for (let n = 0; events.length < BODIES * 100; n++) events.push(...session(pick(live), Date.now() - 60_000, `m${n}`));
const bodies = Array.from({ length: BODIES }, (_, i) =>
  JSON.stringify({ events: events.slice(i * 100, i * 100 + 100) }),
);
let sink = 0;
const round = () => {
  const t = process.cpuUsage();
  for (const body of bodies) {
    const items = (JSON.parse(body) as { events: unknown[] }).events;
    const options = { source: 'bench', now: Date.now() };
    const sorted = sortItems(items, (item) => {
      const r = normalizeEvent(item, options);
      return r.ok ? { ok: true as const, value: [r.value] } : r;
    });
    sink += sorted.records.length;
  }
  const d = process.cpuUsage(t);
  return (d.user + d.system) / (BODIES * 100);
};
round(); // warm-up
const figures = Array.from({ length: ROUNDS }, round).sort((a, b) => a - b);
console.log(
  `parse + sortItems(normalizeEvent): median ${figures[ROUNDS >> 1]!.toFixed(2)} µs/event (${figures.map((f) => f.toFixed(2)).join(' ')}), ${sink} records`,
);
