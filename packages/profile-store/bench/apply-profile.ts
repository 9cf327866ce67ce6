/**
 * `tsx packages/profile-store/bench/apply-profile.ts`: the segmenter's apply path alone (bench/apply.ts
 * `applyTimed`), round after round on the demo traffic, for its node side: CPU per event in node (user
 * and system) and in the Postgres backend each round — the later rounds are warm, unlike most of
 * `bench:segmenter`'s — and, when asked, a CPU profile (BENCH_CPU_PROFILE, read it with
 * bench/cpu-profile-summary.cjs) or an allocation profile (BENCH_HEAP_PROFILE: a sampling heap profile that
 * keeps what the collections freed, so it shows everything allocated) of all rounds but the first. The
 * traffic is generated before the first round, so neither profile holds it. Printed, never asserted.
 *
 * BENCH_CHUNK (events a transaction, default 500), BENCH_EVENTS (a round, default 20 000), BENCH_RUNS
 * (rounds, default 6).
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import type { TopicMessage } from '@pstream/events';
import { commonEnv, parseEnv } from '@pstream/platform';
import { z } from 'zod';
import { applyTimed, benchSchema, cpuSeconds } from './apply';
import { demoTraffic } from './traffic';

const env = parseEnv(
  z.object({
    DATABASE_URL: commonEnv.DATABASE_URL,
    BENCH_CHUNK: z.coerce.number().int().min(1).max(100_000).default(500),
    BENCH_EVENTS: z.coerce.number().int().min(1000).default(20_000),
    BENCH_RUNS: z.coerce.number().int().min(2).default(6),
    BENCH_CPU_PROFILE: z.string().optional(),
    BENCH_HEAP_PROFILE: z.string().optional(),
  }),
  process.env,
);

async function main(): Promise<void> {
  const n = env.BENCH_EVENTS;
  const nowMs = Date.now();
  const rounds: TopicMessage[][] = [];
  for (let r = 0, first = 0; r < env.BENCH_RUNS; r++, first += Math.ceil(n / 10)) {
    const events: TopicMessage[] = [];
    for (const block of demoTraffic({ people: Math.ceil(n / 10), first, nowMs, seed: r + 1 })) events.push(...block);
    rounds.push(events.slice(0, n));
  }
  // One connection, so one Postgres backend does all the work and its CPU can be read.
  const box = await benchSchema(env.DATABASE_URL, 'apply_profile', 1);
  const session = new Session();
  session.connect();
  try {
    const pid = (await box.pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    for (const [r, events] of rounds.entries()) {
      if (r === 1 && env.BENCH_CPU_PROFILE) {
        await session.post('Profiler.enable');
        await session.post('Profiler.start');
      }
      if (r === 1 && env.BENCH_HEAP_PROFILE) await session.post('HeapProfiler.startSampling', SAMPLING);
      const before = cpuSeconds(pid);
      const usage = process.cpuUsage();
      const seconds = await applyTimed(box.store, events, nowMs, `round-${r}`, env.BENCH_CHUNK);
      const { user, system } = process.cpuUsage(usage);
      const after = cpuSeconds(pid);
      const per = (us: number) => (us / events.length).toFixed(1);
      const pg = after.pg === null || before.pg === null ? '?' : per((after.pg - before.pg) * 1e6);
      console.log(
        `round ${r + 1} (${env.BENCH_CHUNK} a transaction): ${Math.round(events.length / seconds)} events/s; ` +
          `CPU per event node ${per(user + system)} µs (user ${per(user)}, system ${per(system)}), Postgres ${pg} µs`,
      );
    }
    if (env.BENCH_CPU_PROFILE)
      writeFileSync(env.BENCH_CPU_PROFILE, JSON.stringify((await session.post('Profiler.stop')).profile));
    if (env.BENCH_HEAP_PROFILE) {
      const { profile } = await session.post('HeapProfiler.stopSampling');
      writeFileSync(env.BENCH_HEAP_PROFILE, JSON.stringify(profile));
      console.log(`allocated (sampled) after round 1: ${(heapBytes(profile.head) / 1e6).toFixed(1)} MB`);
    }
  } finally {
    session.disconnect();
    await box.drop();
  }
}

/** Every 4 KiB allocated, and what the collections freed too (fields newer than @types/node's). */
const SAMPLING = {
  samplingInterval: 4096,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: true,
};

type HeapNode = { selfSize: number; children: HeapNode[] };
const heapBytes = (node: HeapNode): number => node.children.reduce((sum, c) => sum + heapBytes(c), node.selfSize);

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
