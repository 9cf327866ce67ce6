/**
 * What the machine and Redis did during a measured window, for `BENCH_STALL_TRACE=1 pnpm bench:sustained`
 * (BENCHMARKS.md "The freshness stalls"). Beside the services' own trace (bench/stall-trace.cjs, preloaded
 * into them), it samples every 100 ms the runnable tasks (`procs_running` of /proc/stat), the machine's busy
 * share and the four processes that used the most CPU in that sample, and turns on Redis's latency monitor
 * (`latency-monitor-threshold` 5 ms, put back afterwards) to read `LATENCY LATEST` and the `SLOWLOG`
 * entries of the window at its end. The samples are printed only around the slow probes (`around`).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { Redis } from 'ioredis';

type Sample = { t: number; running: number; busy: number; top: { pid: number; name: string; ms: number }[] };

const TICK_MS = 100;
const CLOCK_TICK_MS = 10; // USER_HZ 100: /proc's CPU times are in hundredths of a second

/** utime + stime (ms) and the command name of every process, from /proc/<pid>/stat. */
function processTimes(): Map<number, { name: string; ms: number }> {
  const out = new Map<number, { name: string; ms: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const fields = stat.slice(close + 2).split(' ');
      out.set(Number(entry), {
        name: stat.slice(stat.indexOf('(') + 1, close),
        ms: (Number(fields[11]) + Number(fields[12])) * CLOCK_TICK_MS,
      });
    } catch {
      // the process ended between the listing and the read
    }
  }
  return out;
}

/** The machine's busy and total jiffies and its runnable tasks, from /proc/stat. */
function machine(): { busy: number; total: number; running: number } {
  const stat = readFileSync('/proc/stat', 'utf8');
  const cpu = stat.slice(0, stat.indexOf('\n')).split(/\s+/).slice(1).map(Number);
  const idle = cpu[3]! + cpu[4]!;
  const total = cpu.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total, running: Number(/procs_running (\d+)/.exec(stat)?.[1] ?? 0) };
}

export class StallWindow {
  private readonly samples: Sample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private redis: Redis | undefined;
  private threshold: string | undefined;
  private startedAt = 0;

  constructor(private readonly redisUrl: string) {}

  async start(): Promise<void> {
    this.startedAt = Date.now();
    this.redis = new Redis(this.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await this.redis.connect();
    this.threshold = ((await this.redis.config('GET', 'latency-monitor-threshold')) as string[])[1];
    await this.redis.config('SET', 'latency-monitor-threshold', '5');
    let lastProc = processTimes();
    let lastMachine = machine();
    this.timer = setInterval(() => {
      const procs = processTimes();
      const now = machine();
      const top = [...procs]
        .map(([pid, p]) => ({ pid, name: p.name, ms: p.ms - (lastProc.get(pid)?.ms ?? p.ms) }))
        .filter((p) => p.ms > 0)
        .sort((a, b) => b.ms - a.ms)
        .slice(0, 4);
      const total = now.total - lastMachine.total;
      this.samples.push({
        t: Date.now(),
        running: now.running,
        busy: total > 0 ? (now.busy - lastMachine.busy) / total : 0,
        top,
      });
      [lastProc, lastMachine] = [procs, now];
    }, TICK_MS);
  }

  /** Stops sampling; answers Redis's latency events and the slow-log entries since `start`, as lines. */
  async stop(): Promise<string[]> {
    clearInterval(this.timer);
    const redis = this.redis!;
    const lines: string[] = [];
    try {
      const latest = (await redis.call('LATENCY', 'LATEST')) as [string, number, number, number][];
      for (const [event, at, ms, max] of latest)
        if (at * 1000 >= this.startedAt)
          lines.push(`redis latency event ${event}: last ${ms} ms at ${at}, max ${max} ms`);
      // Every client's, this run's or not (Redis is shared): the client's name and address tell whose.
      const slow = (await redis.call('SLOWLOG', 'GET', '128')) as [number, number, number, string[], string, string][];
      for (const [, at, us, args, addr, name] of slow)
        if (at * 1000 >= this.startedAt - 1000)
          lines.push(
            `redis slowlog ${new Date(at * 1000).toISOString()}: ${us} µs ${args.slice(0, 3).join(' ')} (client ${name || '-'} ${addr})`,
          );
    } finally {
      await redis.config('SET', 'latency-monitor-threshold', this.threshold ?? '0');
      redis.disconnect();
    }
    return lines;
  }

  /** The samples from `ms` before to `ms` after each of `times` (Date.now() values), one line each. */
  around(times: number[], ms = 1000): string[] {
    return this.samples
      .filter((s) => times.some((t) => s.t >= t - ms && s.t <= t + ms))
      .map(
        (s) =>
          `TRACE ${JSON.stringify({ t: s.t, ev: 'machine', running: s.running, busy: Math.round(s.busy * 100) / 100, top: s.top.map((p) => `${p.name}:${p.pid} ${p.ms}ms`) })}`,
      );
  }
}
