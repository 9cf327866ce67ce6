/**
 * The per-read split of `BENCH_READ_SPLIT=1 pnpm bench:reads`: the lines bench/read-split.cjs wrote
 * for one query API, summarized over each paced window (BENCHMARKS.md "Reads", issue 21 eighth pass).
 */
import { readFileSync } from 'node:fs';

/** One read's instants (absolute ms), as bench/read-split.cjs names them. */
type Read = { a: number; h: number; s: number; e: number; r: number; f: number };

/** The parts of a read (ms): each a span between two of its instants. */
const PARTS: [string, (x: Read) => number][] = [
  ['total', (x) => x.f - x.a],
  // HTTP head parsed → the Redis MGET written: Fastify's routing, hooks, the token guard, the id's check,
  // the handler, and the rest of its turn (the person reader's batch leaves on the turn's `setImmediate`)
  ['pre', (x) => x.h - x.a],
  // MGET written → the facts statement written: ≤ 0 when both batches leave in the same `setImmediate` turn
  // (the statement first); > 0 when the statement waited for one of those already out
  ['pgQueue', (x) => x.s - x.h],
  // the statement written → its answer parsed (Postgres's execution, the wake-ups, pg's parse)
  ['pgStmt', (x) => x.e - x.s],
  ['redis', (x) => x.r - x.h],
  // the later of both stores' answers → the answer's last byte handed to the socket
  ['post', (x) => x.f - Math.max(x.e, x.r)],
];

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const ms = (v: number) => v.toFixed(2);

/** One line per window: p50 and p99 of each part, and what the slowest 1 % of reads waited on. */
export function summarizeSplit(file: string, windows: { label: string; start: number; end: number }[]): string[] {
  const reads: Read[] = [];
  const gcs: { start: number; ms: number }[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line === '') continue;
    const v = JSON.parse(line) as unknown[];
    if (v[0] === 'g') gcs.push({ start: v[1] as number, ms: v[2] as number });
    else {
      const [a, h, s, e, r, f, status] = v as number[];
      // only 200s that went through both stores (a 404 never asks Redis for a second key, etc.)
      if (status === 200 && [a, h, s, e, r, f].every((t) => typeof t === 'number'))
        reads.push({ a: a!, h: h!, s: s!, e: e!, r: r!, f: f! });
    }
  }
  return windows.map(({ label, start, end }) => {
    const w = reads.filter((x) => x.a >= start && x.a <= end);
    if (w.length < 100) return `${label}: ${w.length} reads traced`;
    const parts = PARTS.map(([name, of]) => {
      const v = w.map(of).sort((p, q) => p - q);
      return `${name} ${ms(quantile(v, 0.5))}/${ms(quantile(v, 0.99))}`;
    });
    const byTotal = [...w].sort((p, q) => p.f - p.a - (q.f - q.a));
    const slow = byTotal.slice(Math.floor(0.99 * byTotal.length));
    const slowParts = PARTS.slice(1).map(([name, of]) => {
      const v = slow.map(of).sort((p, q) => p - q);
      return `${name} ${ms(quantile(v, 0.5))}`;
    });
    const pgLast = slow.filter((x) => x.e > x.r).length;
    const gcIn = gcs.filter((g) => g.start >= start && g.start <= end);
    const inGc = slow.filter((x) => gcIn.some((g) => g.start < x.f && g.start + g.ms > x.a)).length;
    const gcMs = gcIn.reduce((t, g) => t + g.ms, 0);
    const longest = gcIn.reduce((t, g) => Math.max(t, g.ms), 0);
    return (
      `${label}: ${w.length} reads, p50/p99 ms ${parts.join(', ')}; ` +
      `slowest 1 % (${slow.length}, from ${ms(slow[0]!.f - slow[0]!.a)} ms) medians ${slowParts.join(', ')}, ` +
      `Postgres answered last in ${pgLast}, overlapped a GC pause ${inGc}; ` +
      `GC in the window ${gcIn.length} pauses, ${ms(gcMs)} ms, longest ${ms(longest)} ms`
    );
  });
}
