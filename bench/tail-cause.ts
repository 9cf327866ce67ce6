/**
 * `BENCH_READ_CAUSE=1 pnpm bench:reads` (BENCHMARKS.md "Reads", issue 21 ninth pass): for each paced
 * window, what the slowest 1 % of requests waited on — the client sending late, the server's main
 * thread waiting for a core (the kernel's run-queue wait, /proc/<pid>/task/<tid>/schedstat), a GC
 * pause, or its own CPU — from the client's records (bench/reads.bench.ts `paced`) joined with the
 * lines bench/tail-cause-preload.cjs wrote in the server process, by the `x-bench-seq` header.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** One paced request as the client saw it (absolute ms) and its own run-queue wait (ms, cumulative). */
export type CauseClient = { seq: string; due: number; sent: number; done: number; waitSent: number; waitDone: number };

/** `<cpu ns> <wait ns> <slices>` of a task: [wait ms, cpu ms]. */
function schedstat(path: string): [number, number] {
  try {
    const [cpu, wait] = readFileSync(path, 'latin1').split(' ');
    return [Number(wait) / 1e6, Number(cpu) / 1e6];
  } catch {
    return [0, 0]; // the task ended
  }
}

/** The bench process's main thread: its cumulative run-queue wait (ms). */
export const selfRunWait = (): number => schedstat(`/proc/${process.pid}/task/${process.pid}/schedstat`)[0];

/** Run-queue wait and CPU (ms, cumulative) of every thread of each process. */
export function processWaits(pids: number[]): { wait: number; cpu: number } {
  let wait = 0;
  let cpu = 0;
  for (const pid of pids) {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      const [w, c] = schedstat(`/proc/${pid}/task/${t}/schedstat`);
      wait += w;
      cpu += c;
    }
  }
  return { wait, cpu };
}

type Reading = { t: number; wait: number; cpu: number };
type ServerRead = { a: number; f: number; waitA: number; waitF: number; cpuA: number; cpuF: number };
type Gc = { start: number; ms: number; kind: string };

/** The server's lines: its requests by seq, its counters in time order, its GC pauses, its loop delays. */
function readServer(file: string) {
  const reads = new Map<string, ServerRead>();
  const readings: Reading[] = [];
  // the 10-ms readings with the main thread's count of turns on a core
  const turns: { t: number; n: number }[] = [];
  const gcs: Gc[] = [];
  const loops: { t: number; p99: number; max: number }[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line === '') continue;
    const v = JSON.parse(line) as unknown[];
    if (v[0] === 'q') {
      const [, seq, a, f, waitA, waitF, cpuA, cpuF] = v as [string, string, ...number[]];
      reads.set(seq, { a: a!, f: f!, waitA: waitA!, waitF: waitF!, cpuA: cpuA!, cpuF: cpuF! });
      readings.push({ t: a!, wait: waitA!, cpu: cpuA! }, { t: f!, wait: waitF!, cpu: cpuF! });
    } else if (v[0] === 'w') {
      readings.push({ t: v[1] as number, wait: v[2] as number, cpu: v[3] as number });
      if (typeof v[4] === 'number') turns.push({ t: v[1] as number, n: v[4] });
    } else if (v[0] === 'g') gcs.push({ start: v[1] as number, ms: v[2] as number, kind: String(v[3]) });
    else if (v[0] === 'l') loops.push({ t: v[1] as number, p99: v[3] as number, max: v[4] as number });
  }
  readings.sort((p, q) => p.t - q.t);
  return { reads, readings, turns, gcs, loops };
}

/** The counter's growth over [x, y], from the last reading at or before x to the first at or after y. */
function growth(readings: Reading[], x: number, y: number, of: (r: Reading) => number): number {
  let lo = 0;
  let hi = readings.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (readings[mid]!.t <= x) lo = mid;
    else hi = mid - 1;
  }
  let j = lo;
  while (j < readings.length - 1 && readings[j]!.t < y) j++;
  return of(readings[j]!) - of(readings[lo]!);
}

const med = (v: number[]) => {
  const s = [...v].sort((p, q) => p - q);
  return s.length === 0 ? 0 : s[Math.floor(s.length / 2)]!;
};
const f2 = (v: number) => v.toFixed(2);

/**
 * One line for a paced window: the slowest 1 % (by the client's latency from the due time), medians
 * of where their time went, and the window's totals per process.
 */
export function summarizeCause(label: string, serverFile: string, client: CauseClient[]): string {
  const { reads, readings, turns, gcs, loops } = readServer(serverFile);
  const joined = client
    .filter((c) => c.done > 0 && reads.has(c.seq))
    .map((c) => ({ c, s: reads.get(c.seq)! }))
    .sort((p, q) => p.c.done - p.c.due - (q.c.done - q.c.due));
  if (joined.length < 100) return `${label}: ${joined.length} requests joined`;
  const start = joined.reduce((m, j) => Math.min(m, j.c.due), Infinity);
  const end = joined.reduce((m, j) => Math.max(m, j.c.done), 0);
  const slow = joined.slice(Math.floor(0.99 * joined.length));
  const gcOverlap = (x: number, y: number) =>
    gcs.reduce((t, g) => t + Math.max(0, Math.min(y, g.start + g.ms) - Math.max(x, g.start)), 0);
  const parts = slow.map(({ c, s }) => ({
    latency: c.done - c.due,
    late: c.sent - c.due,
    toServer: s.a - c.sent,
    inServer: s.f - s.a,
    back: c.done - s.f,
    // the server's main thread over [sent, done]: waiting for a core, running, in a GC pause
    srvWait: growth(readings, c.sent, c.done, (r) => r.wait),
    srvCpu: growth(readings, c.sent, c.done, (r) => r.cpu),
    gc: gcOverlap(c.sent, c.done),
    cliWait: c.waitDone - c.waitSent,
  }));
  const names = Object.keys(parts[0]!) as (keyof (typeof parts)[0])[];
  const all = joined.map(({ c }) => c.done - c.due).sort((p, q) => p - q);
  const q = (p: number) => all[Math.min(all.length - 1, Math.floor(p * all.length))]!;
  const win = gcs.filter((g) => g.start >= start && g.start <= end);
  const srvWaitWin = growth(readings, start, end, (r) => r.wait);
  const loopMax = loops.filter((l) => l.t >= start && l.t <= end + 1000).reduce((m, l) => Math.max(m, l.max), 0);
  const inWindow = turns.filter((x) => x.t >= start && x.t <= end);
  const turnsPerRequest =
    inWindow.length < 2
      ? NaN
      : (inWindow.at(-1)!.n - inWindow[0]!.n) /
        (joined.length * ((inWindow.at(-1)!.t - inWindow[0]!.t) / (end - start)));
  const mostlyWait = parts.filter((p) => p.srvWait + p.gc >= 0.5 * (p.latency - p.late)).length;
  return (
    `${label}: ${joined.length} requests, p50 ${f2(q(0.5))} p99 ${f2(q(0.99))} ms; slowest 1 % (${slow.length}) medians ms: ` +
    names.map((n) => `${n} ${f2(med(parts.map((p) => p[n])))}`).join(', ') +
    `; of them ${mostlyWait} spent ≥ half their time (after the due time's send) with the server's main thread waiting for a core or in GC; ` +
    `window ${f2((end - start) / 1000)} s: server main-thread run-queue wait ${f2(srvWaitWin)} ms, GC ${win.length} pauses ${f2(win.reduce((t, g) => t + g.ms, 0))} ms (longest ${f2(win.reduce((m, g) => Math.max(m, g.ms), 0))}, ${win.filter((g) => g.kind !== 'scavenge').length} not scavenges), event-loop delay max ${f2(loopMax)} ms, main thread's turns on a core per request ${f2(turnsPerRequest)}`
  );
}
