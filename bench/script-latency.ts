/**
 * `tsx bench/script-latency.ts <command …>` — how long the per-tag index write script (tag-range.ts
 * RANGE_WRITE) holds Redis while a bench runs, and what that does to a reader beside it. Runs the
 * command with REDIS_URL's Redis logging every command of at least BENCH_SLOWLOG_US µs (10) in its
 * SLOWLOG (a Redis of one's own: it sets the server's slowlog settings), pings it with
 * a client of its own every BENCH_PROBE_MS ms (1) while the command runs, then prints RANGE_WRITE's
 * calls (count, p50/p99/p99.9/max µs, the changes a call carried at most, the longest calls with theirs)
 * and the probes' p50/p99/p99.9/max ms. Printed, never asserted.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import Redis from 'ioredis';
import { loadDefaultEnv } from '@pstream/testkit';
import { RANGE_WRITE } from '../packages/interest-store/src/tag-range';
import { pct } from './redis-bench';

type Entry = [id: number, at: number, us: number, args: string[]];

async function main(): Promise<void> {
  loadDefaultEnv();
  const command = process.argv.slice(2);
  if (command.length === 0) throw new Error('usage: tsx bench/script-latency.ts <command …>');
  const url = process.env.REDIS_URL!;
  const redis = new Redis(url);
  const threshold = Number(process.env.BENCH_SLOWLOG_US ?? 10);
  const every = Number(process.env.BENCH_PROBE_MS ?? 1);
  await redis.config('SET', 'slowlog-log-slower-than', String(threshold));
  await redis.config('SET', 'slowlog-max-len', '1000000');
  await redis.slowlog('RESET');
  const sha = createHash('sha1').update(RANGE_WRITE).digest('hex');

  const probes: number[] = [];
  let running = true;
  const probe = (async () => {
    const client = new Redis(url);
    while (running) {
      const t = performance.now();
      await client.ping();
      probes.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, every));
    }
    client.disconnect();
  })();
  const code = await new Promise<number>((resolve) => {
    const child = spawn(command[0]!, command.slice(1), { stdio: 'inherit' });
    child.on('exit', (c) => resolve(c ?? 1));
  });
  running = false;
  await probe;

  const log = (await redis.call('SLOWLOG', 'GET', '-1')) as Entry[];
  const calls: { us: number; changes: number }[] = [];
  for (const [, , us, args] of log) {
    if (String(args[0]).toLowerCase() !== 'evalsha' || args[1] !== sha) continue;
    // SLOWLOG keeps 32 arguments, the last `... (N more arguments)`: EVALSHA sha 4 keys×4 three settings, then triples
    const more = /^\.\.\. \((\d+) more arguments\)$/.exec(String(args[args.length - 1]));
    const total = more ? args.length - 1 + Number(more[1]) : args.length;
    calls.push({ us, changes: (total - 10) / 3 });
  }
  await redis.config('SET', 'slowlog-log-slower-than', '10000');
  await redis.config('SET', 'slowlog-max-len', '128');
  await redis.slowlog('RESET');
  redis.disconnect();
  const us = calls.map((c) => c.us);
  const longest = [...calls].sort((a, b) => b.us - a.us).slice(0, 5);
  const f = (n: number) => (n === undefined ? '-' : n.toFixed(2));
  console.log(
    `RANGE_WRITE calls ≥ ${threshold} µs: ${calls.length}, µs p50 ${pct(us, 50)} p99 ${pct(us, 99)} p99.9 ${pct(us, 99.9)} max ${Math.max(0, ...us)}; ` +
      `changes a call at most ${Math.max(0, ...calls.map((c) => c.changes))}; longest ${longest.map((c) => `${c.us} µs/${c.changes}`).join(', ')}; ` +
      `over 1 ms ${us.filter((u) => u > 1000).length}, over 5 ms ${us.filter((u) => u > 5000).length}, time in them ${(us.reduce((a, b) => a + b, 0) / 1000).toFixed(0)} ms`,
  );
  // by the changes a call carried: a call's time grows with them (and with the splits they make)
  for (const [lo, hi] of [
    [1, 10],
    [11, 50],
    [51, 100],
    [101, 250],
    [251, 500],
    [501, 1000],
  ] as const) {
    const got = calls.filter((c) => c.changes >= lo && c.changes <= hi).map((c) => c.us);
    if (got.length > 0)
      console.log(
        `  ${lo}–${hi} changes: ${got.length} calls, µs p50 ${pct(got, 50)} p99 ${pct(got, 99)} max ${Math.max(...got)}`,
      );
  }
  console.log(
    `probe PING every ${every} ms: ${probes.length}, ms p50 ${f(pct(probes, 50))} p99 ${f(pct(probes, 99))} p99.9 ${f(pct(probes, 99.9))} max ${f(Math.max(0, ...probes))}`,
  );
  process.exitCode = code;
}

void main();
