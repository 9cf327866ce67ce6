/**
 * A preload (`node --require bench/tail-cause-preload.cjs`) for the query API and the no-op route of
 * `BENCH_READ_CAUSE=1 pnpm bench:reads` (BENCHMARKS.md "Reads", issue 21 ninth pass): what holds
 * the process up while a paced request waits. Appends to `BENCH_READ_CAUSE_FILE`, one JSON array a
 * line, absolute ms (`performance.timeOrigin + performance.now()`, comparable with Date.now()):
 *   ["q", seq, a, f, waitA, waitF, cpuA, cpuF]  a request carrying `x-bench-seq` (the paced client's):
 *        a = Node emitted it, f = its last byte handed to the socket; wait/cpu = the main thread's
 *        cumulative run-queue wait and CPU time (ms, /proc/<pid>/task/<pid>/schedstat) at a and at f
 *   ["w", t, wait, cpu, slices]  the same counters every 10 ms, and how many times the main thread
 *        has been put on a core (its wake-ups and preemptions) (with the requests' readings, the wait of the
 *        main thread between any two instants, e.g. before Node saw a request)
 *   ["g", start, ms, kind]  every GC pause
 *   ["l", t, p50, p99, max]  each second's event-loop delay (perf_hooks.monitorEventLoopDelay, 10 ms: as prom-client's, not 1 000 wake-ups a second)
 * Nothing in the service changes; a process without `x-bench-seq` requests writes only w/g/l lines.
 */
const { Buffer } = require('node:buffer');
const fs = require('node:fs');
const http = require('node:http');
const { setInterval } = require('node:timers');
const { PerformanceObserver, monitorEventLoopDelay, performance } = require('node:perf_hooks');
const { GC_KINDS, lineWriter } = require('./preload-lines.cjs');

const file = process.env.BENCH_READ_CAUSE_FILE;
if (!file) throw new Error('bench/tail-cause-preload.cjs needs BENCH_READ_CAUSE_FILE');
const line = lineWriter(file);
const origin = performance.timeOrigin;
const now = () => origin + performance.now();

// the main thread's schedstat: "<cpu ns> <run-queue wait ns> <timeslices>"
const fd = fs.openSync(`/proc/${process.pid}/task/${process.pid}/schedstat`, 'r');
const buf = Buffer.alloc(96);
const sched = () => {
  const n = fs.readSync(fd, buf, 0, buf.length, 0);
  const s = buf.toString('latin1', 0, n);
  const sp = s.indexOf(' ');
  const sp2 = s.indexOf(' ', sp + 1);
  return [Number(s.slice(sp + 1, sp2)) / 1e6, Number(s.slice(0, sp)) / 1e6, Number(s.slice(sp2 + 1))];
};

setInterval(() => {
  const [w, c, n] = sched();
  line(['w', now(), w, c, n]);
}, 10).unref();

const eld = monitorEventLoopDelay({ resolution: 10 });
eld.enable();
setInterval(() => {
  line(['l', now(), eld.percentile(50) / 1e6, eld.percentile(99) / 1e6, eld.max / 1e6]);
  eld.reset();
}, 1000).unref();

new PerformanceObserver((list) => {
  for (const e of list.getEntries())
    line(['g', origin + e.startTime, e.duration, GC_KINDS[e.detail?.kind] ?? e.detail?.kind]);
}).observe({ entryTypes: ['gc'] });

const emit = http.Server.prototype.emit;
http.Server.prototype.emit = function (event, request, response) {
  const seq = event === 'request' ? request.headers['x-bench-seq'] : undefined;
  if (seq !== undefined) {
    const a = now();
    const [wa, ca] = sched();
    response.on('finish', () => {
      const f = now();
      const [wf, cf] = sched();
      line(['q', seq, a, f, wa, wf, ca, cf]);
    });
  }
  return emit.apply(this, arguments);
};
