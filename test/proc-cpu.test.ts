import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { execFileSync } from 'node:child_process';
import {
  clockTicks,
  CpuMeter,
  listeningPid,
  machineCpu,
  mainThreadSched,
  parseProcStat,
  reapedChildrenCpuSeconds,
} from '../bench/proc-cpu';

describe('bench/proc-cpu', () => {
  it('parses this process’s own /proc/<pid>/stat', () => {
    const s = parseProcStat(readFileSync(`/proc/${process.pid}/stat`, 'utf8'));
    expect(s.pid).toBe(process.pid);
    expect(s.ppid).toBe(process.ppid);
    expect(['R', 'S']).toContain(s.state);
    // The kernel's ticks and Node's own rusage count the same CPU, ticks rounding down.
    const used = process.cpuUsage();
    const fromProc = (s.utimeTicks + s.stimeTicks) / clockTicks();
    expect(fromProc).toBeGreaterThan(0);
    expect(fromProc).toBeLessThanOrEqual((used.user + used.system) / 1e6 + 0.05);
  });

  it('counts fields from the last parenthesis, so a name with spaces and parentheses is read right', () => {
    const line =
      '4242 (we (ird) name) S 17 4242 4242 0 -1 4194560 100 0 0 0 321 45 7 2 20 0 9 0 1000 1 1 18446744073709551615';
    expect(parseProcStat(line)).toEqual({
      pid: 4242,
      comm: 'we (ird) name',
      state: 'S',
      ppid: 17,
      utimeTicks: 321,
      stimeTicks: 45,
      reapedChildrenTicks: 9,
    });
  });

  it('counts a reaped child’s CPU among this process’s children', () => {
    const before = reapedChildrenCpuSeconds();
    // a child that burns some CPU, then is waited for
    execFileSync(process.execPath, [
      '-e',
      'let x = 0; for (let i = 0; i < 5e7; i++) x += i % 3; if (x < 0) console.log(x)',
    ]);
    expect(reapedChildrenCpuSeconds()).toBeGreaterThan(before);
  });

  it('refuses a line that is not a stat line, naming it', () => {
    expect(() => parseProcStat('hello')).toThrow('not a /proc/<pid>/stat line: "hello"');
    expect(() => parseProcStat('1 (x) S 1 1 1 0 -1 0 0 0 0 0 abc 3')).toThrow('field 14 is not a number');
  });

  it('reads the machine’s busy and total CPU from /proc/stat', () => {
    const m = machineCpu('cpu  100 5 50 800 20 1 2 3 0 0\ncpu0 1 2 3 4\n');
    const t = clockTicks();
    expect(m.busy).toBeCloseTo((100 + 5 + 50 + 1 + 2 + 3) / t);
    expect(m.total).toBeCloseTo((100 + 5 + 50 + 800 + 20 + 1 + 2 + 3) / t);
    expect(machineCpu().total).toBeGreaterThan(0);
  });

  it('reads how long this process’s main thread ran and waited for a CPU, and a window over it', async () => {
    const before = mainThreadSched(process.pid)!;
    const cpuBefore = process.cpuUsage();
    let x = 0;
    for (let i = 0; i < 3e7; i++) x += i % 7; // CPU on this (the main) thread
    const after = mainThreadSched(process.pid)!;
    const used = process.cpuUsage(cpuBefore);
    expect(x).toBeGreaterThan(0);
    // the loop ran on the main thread: its run time grew by about the process's CPU in the loop
    const ran = after.ran - before.ran;
    expect(ran).toBeGreaterThan(0.5 * ((used.user + used.system) / 1e6) - 0.01);
    expect(ran).toBeLessThanOrEqual((used.user + used.system) / 1e6 + 0.05);
    expect(after.waited).toBeGreaterThanOrEqual(before.waited);
    expect(mainThreadSched(2 ** 22 + 1)).toBeUndefined(); // above Linux's largest pid (2^22): no such process
    const meter = new CpuMeter([
      { name: 'me', pids: () => [process.pid] },
      { name: 'nobody', pids: () => [] },
    ]);
    const start = await meter.sample();
    for (let i = 0; i < 3e7; i++) x += i % 7;
    const w = CpuMeter.between(start, await meter.sample());
    expect(w.mainThreads.get('me')!.ran).toBeGreaterThan(0);
    expect(w.mainThreads.get('nobody')).toEqual({ ran: 0, waited: 0 });
  });

  it('finds the process listening on a port, and a CPU window over it', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      expect(listeningPid(port)).toBe(process.pid);
      const meter = new CpuMeter([
        { name: 'me', pids: () => [process.pid] },
        { name: 'nobody', pids: () => [] },
      ]);
      const start = await meter.sample();
      let x = 0;
      for (let i = 0; i < 3e7; i++) x += i % 7; // some CPU to see
      const w = CpuMeter.between(start, await meter.sample());
      expect(x).toBeGreaterThan(0);
      expect(w.byGroup.get('me')!.pids).toBe(1);
      expect(w.byGroup.get('me')!.cpu).toBeGreaterThanOrEqual(0);
      expect(w.byGroup.get('nobody')).toEqual({ cpu: 0, pids: 0 });
    } finally {
      server.close();
    }
  });
});
