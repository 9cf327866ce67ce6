/** Paced HTTP load for bench/reads.bench.ts. */
import http from 'node:http';

/**
 * `paced` against several servers in the same window: `rate` requests a second evenly paced over
 * `urls.length` × `seconds`, in slices of `sliceMs` taking turns (the first server's, then the
 * second's, …), so each gets `seconds` of load at `rate` and all meet the same background load — the machine's
 * other work swings from one 6-s window to the next by as much as the figure measured (BENCHMARKS.md
 * "Reads", issue 21 ninth pass). Each server has its own `connections` keep-alive connections;
 * latency counts from the due time as in `paced` (bench/reads.bench.ts). p50/p99 in ms per server.
 */
export async function pacedInterleaved(
  urls: string[],
  ids: string[],
  seconds: number,
  rate: number,
  headers: http.OutgoingHttpHeaders = {},
  sliceMs = 500,
  connections = 32,
) {
  const sides = urls.map((url) => ({
    url: new URL(url),
    agent: new http.Agent({ keepAlive: true, maxSockets: connections }),
    latencies: [] as number[],
    failed: 0,
  }));
  const total = Math.round(urls.length * seconds * rate);
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    let sent = 0;
    let settled = 0;
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - t0) * rate) / 1000) + 1);
      for (; sent < due; sent++) {
        const dueAt = t0 + (sent * 1000) / rate;
        const side = sides[Math.floor((dueAt - t0) / sliceMs) % sides.length]!;
        const settle = (ok: boolean) => {
          side.latencies.push(performance.now() - dueAt);
          if (!ok) side.failed++;
          if (++settled === total) resolve();
        };
        http
          .get(
            {
              hostname: side.url.hostname,
              port: side.url.port,
              path: `${side.url.pathname}${encodeURIComponent(ids[sent % ids.length]!)}`,
              agent: side.agent,
              headers,
            },
            (res) => {
              res.resume();
              res.on('end', () => settle(res.statusCode === 200));
            },
          )
          .on('error', () => settle(false));
      }
      if (sent < total) setTimeout(tick, 1);
    };
    tick();
  });
  return sides.map((side) => {
    side.agent.destroy();
    const l = side.latencies.sort((a, b) => a - b);
    const at = (q: number) => Math.round(100 * l[Math.min(l.length - 1, Math.floor(q * l.length))]!) / 100;
    return { p50: at(0.5), p99: at(0.99), failed: side.failed };
  });
}
