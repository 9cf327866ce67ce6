/**
 * CPU time of processes from Linux's /proc, for the benches' per-event CPU budget (docs/operations.md
 * §7 "Whole pipeline"). A process's `utime + stime` in /proc/<pid>/stat covers all its threads, the
 * exited ones included, so a delta over a window is exactly the CPU the process spent in it — the
 * JVM's GC and I/O threads, Postgres's backend, Node's libuv pool alike.
 *
 * A group of processes is named by a function that finds its pids when sampled (the Postgres
 * backends of one database come and go with their pools). A pid seen only at the end of a window
 * started inside it: all its CPU counts. A pid gone by the end took its last CPU with it (short-lived
 * backends are not what the services use; their pools keep connections).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** The fields of /proc/<pid>/stat the benches use. */
export type ProcStat = {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  utimeTicks: number;
  stimeTicks: number;
  /** cutime + cstime: the CPU of children the process has waited for (a child's whole subtree once reaped). */
  reapedChildrenTicks: number;
};

/**
 * Parses one /proc/<pid>/stat line (proc(5)). `comm` is in parentheses and may itself hold spaces
 * and parentheses, so the fields are counted from the last `)`.
 */
export function parseProcStat(text: string): ProcStat {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) throw new Error(`not a /proc/<pid>/stat line: ${JSON.stringify(text.slice(0, 80))}`);
  const rest = text
    .slice(close + 2)
    .trim()
    .split(' ');
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15, cutime and cstime 16 and 17.
  const field = (n: number) => {
    const v = Number(rest[n - 3]);
    if (!Number.isInteger(v))
      throw new Error(`/proc/<pid>/stat field ${n} is not a number in ${JSON.stringify(text.slice(0, 80))}`);
    return v;
  };
  return {
    pid: Number(text.slice(0, open).trim()),
    comm: text.slice(open + 1, close),
    state: rest[0]!,
    ppid: field(4),
    utimeTicks: field(14),
    stimeTicks: field(15),
    reapedChildrenTicks: field(16) + field(17),
  };
}

let ticks: number | undefined;
/** Clock ticks per second (`getconf CLK_TCK`), the unit of utime and stime. */
export function clockTicks(): number {
  ticks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return ticks;
}

/** A process's stat, or undefined once it is gone. */
export function readProcStat(pid: number): ProcStat | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH')
      return undefined;
    throw err;
  }
}

/** CPU seconds (user + system, all threads) a process has used so far; undefined once it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  const s = readProcStat(pid);
  return s === undefined ? undefined : (s.utimeTicks + s.stimeTicks) / clockTicks();
}

/**
 * A process's main thread (its event loop, for Node; Redis's command thread) from /proc/<pid>/schedstat: seconds it
 * ran on a CPU and seconds it waited runnable on a run queue for one (the scheduler's delay: the machine had no core
 * free for it); undefined once the process is gone. A wait well above the run time means the thread got its work
 * done late for want of a core, whatever its own cost.
 */
export function mainThreadSched(pid: number): { ran: number; waited: number } | undefined {
  try {
    const [ran, waited] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
    return { ran: ran! / 1e9, waited: waited! / 1e9 };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH')
      return undefined;
    throw err;
  }
}

/**
 * CPU seconds of a process and every live descendant (a `node:cluster` primary and its workers);
 * undefined once the process itself is gone. Descendants are found by their parent pid in /proc.
 */
export function treeCpuSeconds(pid: number): number | undefined {
  const own = cpuSeconds(pid);
  if (own === undefined) return undefined;
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = readProcStat(Number(entry));
    if (s !== undefined) children.set(s.ppid, [...(children.get(s.ppid) ?? []), s.pid]);
  }
  let total = own;
  const queue = [...(children.get(pid) ?? [])];
  while (queue.length > 0) {
    const child = queue.pop()!;
    total += cpuSeconds(child) ?? 0;
    queue.push(...(children.get(child) ?? []));
  }
  return total;
}

/**
 * CPU seconds of this process's children that have exited and been reaped (Node reaps what it
 * spawns): a tool run as a child — ProducerPerformance's JVM under its launcher script — is
 * measured as the change of this across the run.
 */
export function reapedChildrenCpuSeconds(): number {
  return readProcStat(process.pid)!.reapedChildrenTicks / clockTicks();
}

/** Busy and total CPU seconds of the whole machine, from the first line of /proc/stat. */
export function machineCpu(text = readFileSync('/proc/stat', 'utf8')): { busy: number; total: number } {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (line === undefined) throw new Error('no "cpu " line in /proc/stat');
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number) as number[];
  const busy = user! + nice! + system! + irq! + softirq! + steal!;
  return { busy: busy / clockTicks(), total: (busy + idle! + iowait!) / clockTicks() };
}

/**
 * The pid of the process listening on TCP `port` (any local address), found through the socket's
 * inode in /proc/net/tcp{,6} and the process holding it among /proc/<pid>/fd. Undefined when no
 * process listens there or this user may not read the owner's file descriptors (not root, another
 * user's server).
 */
export function listeningPid(port: number): number | undefined {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      // local_address is "ADDR:PORT" in hex; state 0A is LISTEN; column 9 is the inode
      if (cols.length > 9 && cols[1]!.endsWith(`:${hex}`) && cols[3] === '0A') inodes.add(`socket:[${cols[9]}]`);
    }
  }
  if (inodes.size === 0) return undefined;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue; // gone, or not ours to read
    }
    for (const fd of fds) {
      try {
        if (inodes.has(readlinkSync(`/proc/${entry}/fd/${fd}`))) return Number(entry);
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined;
}

/** A named set of processes; `pids` is asked at every sample. */
export type ProcessGroup = { name: string; pids: () => number[] | Promise<number[]> };

type Sample = {
  at: number;
  byGroup: Map<string, Map<number, number>>;
  /** Each pid's main thread: seconds run and waited on a run queue so far (mainThreadSched). */
  sched: Map<string, Map<number, { ran: number; waited: number }>>;
  machine: { busy: number; total: number };
};

/**
 * CPU seconds per group over a window, and the machine's busy seconds beside them; `mainThreads`: per group, the
 * seconds its processes' main threads ran and waited runnable for a CPU (mainThreadSched) in it.
 */
export type CpuWindow = {
  seconds: number;
  byGroup: Map<string, { cpu: number; pids: number }>;
  mainThreads: Map<string, { ran: number; waited: number }>;
  machineBusy: number;
};

/** Samples the groups' CPU at the start and at the end of a window. */
export class CpuMeter {
  constructor(private readonly groups: ProcessGroup[]) {}

  async sample(): Promise<Sample> {
    const byGroup = new Map<string, Map<number, number>>();
    const sched = new Map<string, Map<number, { ran: number; waited: number }>>();
    for (const g of this.groups) {
      const cpu = new Map<number, number>();
      const threads = new Map<number, { ran: number; waited: number }>();
      for (const pid of await g.pids()) {
        const s = cpuSeconds(pid);
        if (s !== undefined) cpu.set(pid, s);
        const t = mainThreadSched(pid);
        if (t !== undefined) threads.set(pid, t);
      }
      byGroup.set(g.name, cpu);
      sched.set(g.name, threads);
    }
    return { at: performance.now(), byGroup, sched, machine: machineCpu() };
  }

  /** The CPU each group spent between two samples (see the module's header for pids that came or went). */
  static between(start: Sample, end: Sample): CpuWindow {
    const byGroup = new Map<string, { cpu: number; pids: number }>();
    const mainThreads = new Map<string, { ran: number; waited: number }>();
    for (const [name, after] of end.byGroup) {
      const before = start.byGroup.get(name) ?? new Map<number, number>();
      let cpu = 0;
      for (const [pid, s] of after) cpu += s - (before.get(pid) ?? 0);
      let ran = 0;
      let waited = 0;
      const threadsBefore = start.sched.get(name);
      for (const [pid, t] of end.sched.get(name) ?? []) {
        ran += t.ran - (threadsBefore?.get(pid)?.ran ?? 0);
        waited += t.waited - (threadsBefore?.get(pid)?.waited ?? 0);
      }
      byGroup.set(name, { cpu, pids: after.size });
      mainThreads.set(name, { ran, waited });
    }
    return {
      seconds: (end.at - start.at) / 1000,
      byGroup,
      mainThreads,
      machineBusy: end.machine.busy - start.machine.busy,
    };
  }
}
