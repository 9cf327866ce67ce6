import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pacedInterleaved } from '../bench/paced';
import { processWaits, selfRunWait } from '../bench/tail-cause';

/** A local server answering 200 and recording when each request arrived (ms since `t0`). */
async function recorder(t0: () => number) {
  const arrivals: number[] = [];
  const server = http.createServer((_req, res) => {
    arrivals.push(performance.now() - t0());
    res.end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/x/`;
  return { arrivals, url, close: () => new Promise((resolve) => server.close(resolve)) };
}

describe('pacedInterleaved (bench:reads)', () => {
  it('sends each server its seconds × rate requests, in its own slices of the one window', async () => {
    let start = 0;
    const servers = [await recorder(() => start), await recorder(() => start)];
    try {
      start = performance.now();
      const [a, b] = await pacedInterleaved(
        servers.map((s) => s.url),
        ['p1', 'p2'],
        0.4,
        200,
        {},
        100,
      );
      expect(servers.map((s) => s.arrivals.length)).toEqual([80, 80]);
      expect([a!.failed, b!.failed]).toEqual([0, 0]);
      expect(a!.p99).toBeGreaterThanOrEqual(a!.p50);
      // the first server's requests are due in even slices of 100 ms, the second's in odd ones: the
      // first request of each arrives no earlier than its slice starts
      expect(Math.min(...servers[1]!.arrivals)).toBeGreaterThanOrEqual(100);
      expect(Math.max(...servers[0]!.arrivals)).toBeGreaterThanOrEqual(600);
    } finally {
      await Promise.all(servers.map((s) => s.close()));
    }
  });
});

describe('run-queue counters (bench:reads BENCH_READ_CAUSE)', () => {
  it('reads this process’s CPU and run-queue wait from /proc, nothing for a process that is gone', () => {
    const { cpu, wait } = processWaits([process.pid]);
    expect(cpu).toBeGreaterThan(0);
    expect(wait).toBeGreaterThanOrEqual(0);
    expect(selfRunWait()).toBeGreaterThanOrEqual(0);
    expect(processWaits([2 ** 22 + 1])).toEqual({ cpu: 0, wait: 0 });
  });
});
