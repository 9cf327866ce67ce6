/**
 * The scorer's apply throughput beside its raw limit, measured in the same run (docs/operations.md
 * §7 "Scoring"). Printed by `pnpm bench:pipeline`; `runScorerThroughput` returns the figures for
 * any harness. Per run, back to back:
 *
 * - store: prepared events applied through the interest store in chunks of 500 (what the consumer
 *   does per chunk), one client, in two orders — person-contiguous (a person's events together, as
 *   a replay or a backfill reads them) and interleaved (people's events round-robin, as live
 *   traffic of many people mixes them);
 * - end to end: a pre-filled topic consumed into Redis by 1 and by 2 scorer PROCESSES
 *   (services/scorer/src/main.ts) in one consumer group, first applied event → last;
 * - raw: `redis-benchmark -P 16` pipelined ZINCRBY on a throwaway key.
 *
 * Everything runs on its own topics, groups and Redis prefix (`prefix`), removed at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { ProfileEvent } from '@pstream/events';
import { normalizeEvent } from '@pstream/ingest/dialects';
import { createInterestStore } from '@pstream/interest-store';
import { closePool, commonEnv, createKeyring, createPool, loadKeyringConfig, type Redis } from '@pstream/platform';
import { storeOptions, type ScorerConfig } from '@pstream/scorer/config';
import { prepareEvent } from '@pstream/scorer/score';
import type { Kafka } from 'kafkajs';
import { waitFor } from '@pstream/testkit';
import { appliedCount, generateStream } from '@pstream/testkit/streams';
import { cpuSeconds } from './proc-cpu';
import { clearPrefix, median, zincrbyOpsPerSec } from './redis-bench';

const DAY = 86_400_000;
const ROOT = path.resolve(__dirname, '..');

export type ThroughputOptions = {
  runs: number;
  /** Events per run (about: the stream is whole people of 80 events). */
  events: number;
  /** Scorer process counts measured end to end, each in every run (e.g. [1, 2]). */
  scorers: number[];
  /** First of the ports the scorer processes' /healthz listens on (one per process). */
  firstPort: number;
};

export type ThroughputRun = {
  events: number;
  /** Store only, person-contiguous order, events/s. */
  store: number;
  /** Store only, interleaved order, events/s. */
  storeInterleaved: number;
  /** End to end events/s by scorer process count. */
  e2e: Record<number, number>;
  /**
   * End to end, µs of CPU per event of the scorer processes (/proc utime + stime, all of them, first
   * applied event → last), by scorer process count: steadier than events/s on a shared machine.
   */
  e2eCpu: Record<number, number>;
  zincrby: number;
};

export type ThroughputFigures = {
  runs: ThroughputRun[];
  median: Omit<ThroughputRun, 'events'> & { ratios: Record<string, number> };
};

/** A seeded stream of `events` events of 80 per person, normalized as ingest does. */
export function benchStream(
  seed: number,
  events: number,
  perPerson = 80,
): { messages: ProfileEvent[]; people: string[] } {
  const now = Date.now();
  const { events: natives, people } = generateStream(
    seed,
    Math.ceil(events / perPerson),
    now - 30 * DAY,
    now - 3_600_000,
    perPerson,
  );
  const messages = natives.map((e) => {
    const r = normalizeEvent(e, { source: 'bench', now });
    if (!r.ok) throw new Error('invalid generated event');
    return r.value;
  });
  return { messages, people };
}

/** People's events round-robin, each person's in their order (live traffic of many people). */
export function interleave<T extends { profileKey: string }>(xs: readonly T[]): T[] {
  const byPerson = new Map<string, T[]>();
  for (const x of xs) {
    const list = byPerson.get(x.profileKey);
    if (list) list.push(x);
    else byPerson.set(x.profileKey, [x]);
  }
  const lists = [...byPerson.values()];
  const out: T[] = [];
  for (let i = 0; out.length < xs.length; i++) for (const l of lists) if (i < l.length) out.push(l[i]!);
  return out;
}

async function storeRate(
  redis: Redis,
  config: ScorerConfig,
  prefix: string,
  messages: ProfileEvent[],
): Promise<number> {
  const options = storeOptions(config);
  const store = createInterestStore(redis, prefix, options);
  const prepared = messages.map((m) => prepareEvent(m, new Map()));
  const t0 = performance.now();
  for (let i = 0; i < prepared.length; i += 500) await store.apply(prepared.slice(i, i + 500));
  const rate = prepared.length / ((performance.now() - t0) / 1000);
  await clearPrefix(redis, prefix);
  return rate;
}

/**
 * Starts a scorer process (the service's own main) and resolves once its consumer is ready.
 * BENCH_CPU_PROF_DIR: each process writes a CPU profile there when it stops.
 */
async function startScorer(env: NodeJS.ProcessEnv, port: number): Promise<ChildProcess> {
  const profile = process.env.BENCH_CPU_PROF_DIR
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF_DIR}`]
    : [];
  // BENCH_SCORER_NODE_FLAGS: extra node flags for the scorer processes (e.g. `--max-semi-space-size=32`)
  const flags = (process.env.BENCH_SCORER_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const child = spawn(
    process.execPath,
    [...profile, ...flags, '--import', 'tsx', path.join(ROOT, 'services/scorer/src/main.ts')],
    {
      cwd: ROOT,
      env: { ...env, SCORER_PORT: String(port), SCORER_HOST: '127.0.0.1', LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  await waitFor(
    `scorer on port ${port} ready`,
    async () => {
      if (child.exitCode !== null) throw new Error(`scorer exited with ${child.exitCode}`);
      const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
      return res?.ok ? true : undefined;
    },
    60_000,
    100,
  );
  return child;
}

async function stopScorer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/**
 * End to end with `n` scorer processes in one group: they start and join on an empty topic, then
 * the run's events are produced; the rate counts from the first applied event to the last.
 */
async function endToEnd(
  kafka: Kafka,
  redis: Redis,
  env: NodeJS.ProcessEnv,
  tag: string,
  n: number,
  firstPort: number,
  messages: ProfileEvent[],
  people: string[],
): Promise<{ rate: number; cpuPerEvent: number }> {
  const topic = `${env.EVENTS_TOPIC!}-${tag}`;
  const prefix = `${env.REDIS_PREFIX!}-${tag}`;
  const group = `${env.SCORER_GROUP!}-${tag}`;
  const unique = new Set(messages.map((m) => `${m.eventId}@${m.profileKey}`)).size;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 4 }] });
  const children: ChildProcess[] = [];
  try {
    const scorerEnv = { ...env, EVENTS_TOPIC: topic, REDIS_PREFIX: prefix, SCORER_GROUP: group };
    for (let i = 0; i < n; i++) children.push(await startScorer(scorerEnv, firstPort + i));
    // every process holds partitions before the events arrive
    await waitFor(
      'partitions assigned',
      async () => {
        const d = await admin.describeGroups([group]);
        const members = d.groups[0]?.members ?? [];
        return d.groups[0]?.state === 'Stable' && members.length === n ? true : undefined;
      },
      60_000,
      100,
    );
    // Sealed as ingest seals them (docs/privacy.md), before the clock starts: the scorers open every message, as
    // deployed.
    const pool = createPool(
      commonEnv.DATABASE_URL.parse(env.DATABASE_URL),
      commonEnv.PG_SCHEMA.parse(env.PG_SCHEMA),
      'bench-seal',
      2,
    );
    const sealed = await createKeyring(loadKeyringConfig(env), pool)
      .seal(messages.map((m) => ({ key: m.profileKey, value: JSON.stringify(m) })))
      .finally(() => closePool(pool));
    const producer = kafka.producer();
    await producer.connect();
    for (let i = 0; i < sealed.length; i += 1000)
      await producer.send({ topic, acks: -1, messages: sealed.slice(i, i + 1000) });
    await producer.disconnect();
    const first = await waitFor(
      'first applied',
      async () => ((await appliedCount(redis, prefix, people)) > 0 ? performance.now() : undefined),
      60_000,
      5,
    );
    const cpu = () => children.reduce((s, c) => s + (cpuSeconds(c.pid!) ?? 0), 0);
    const firstCpu = cpu();
    const firstCount = await appliedCount(redis, prefix, people);
    const last = await waitFor(
      'all applied',
      async () => ((await appliedCount(redis, prefix, people)) === unique ? performance.now() : undefined),
      300_000,
      20,
    );
    const events = unique - firstCount;
    return { rate: events / ((last - first) / 1000), cpuPerEvent: ((cpu() - firstCpu) * 1e6) / events };
  } finally {
    await Promise.all(children.map(stopScorer));
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.deleteGroups([group]).catch(() => undefined);
    await admin.disconnect();
    await clearPrefix(redis, prefix);
  }
}

/**
 * Runs the throughput bench. `env` is a complete scorer environment whose EVENTS_TOPIC,
 * REDIS_PREFIX and SCORER_GROUP are the run's own (every name used derives from them).
 */
export async function runScorerThroughput(
  kafka: Kafka,
  redis: Redis,
  env: NodeJS.ProcessEnv,
  config: ScorerConfig,
  options: ThroughputOptions,
  log: (line: string) => void = () => undefined,
): Promise<ThroughputFigures> {
  const url = new URL(config.REDIS_URL);
  const fmt = (x: number) => Math.round(x).toLocaleString('en-US');
  const runs: ThroughputRun[] = [];
  for (let run = 1; run <= options.runs; run++) {
    const { messages, people } = benchStream(run, options.events);
    const store = await storeRate(redis, config, `${config.REDIS_PREFIX}-store${run}`, messages);
    const storeInterleaved = await storeRate(redis, config, `${config.REDIS_PREFIX}-mixed${run}`, interleave(messages));
    const e2e: Record<number, number> = {};
    const e2eCpu: Record<number, number> = {};
    for (const n of options.scorers) {
      const r = await endToEnd(kafka, redis, env, `r${run}s${n}`, n, options.firstPort, messages, people);
      e2e[n] = r.rate;
      e2eCpu[n] = r.cpuPerEvent;
    }
    const key = `${config.REDIS_PREFIX}-raw:zincrby`;
    const zincrby = zincrbyOpsPerSec(url, key, 200_000, config.REDIS_CLUSTER_NODES.length > 0);
    await redis.unlink(key);
    runs.push({ events: messages.length, store, storeInterleaved, e2e, e2eCpu, zincrby });
    const e2eText = options.scorers
      .map(
        (n) =>
          `${n} scorer${n > 1 ? 's' : ''} ${fmt(e2e[n]!)} (${(e2e[n]! / zincrby).toFixed(3)}, ${e2eCpu[n]!.toFixed(1)} µs CPU/event)`,
      )
      .join(', ');
    log(
      `run ${run}: ${messages.length} events | store ${fmt(store)} ev/s (${(store / zincrby).toFixed(3)}), interleaved ${fmt(storeInterleaved)} (${(storeInterleaved / zincrby).toFixed(3)}) | end to end ${e2eText} | ZINCRBY -P 16 ${fmt(zincrby)} ops/s`,
    );
  }
  const ratios: Record<string, number> = {
    store: median(runs.map((r) => r.store / r.zincrby)),
    storeInterleaved: median(runs.map((r) => r.storeInterleaved / r.zincrby)),
  };
  const e2e: Record<number, number> = {};
  const e2eCpu: Record<number, number> = {};
  for (const n of options.scorers) {
    e2e[n] = median(runs.map((r) => r.e2e[n]!));
    e2eCpu[n] = median(runs.map((r) => r.e2eCpu[n]!));
    ratios[`e2e${n}`] = median(runs.map((r) => r.e2e[n]! / r.zincrby));
  }
  if (options.scorers.includes(1))
    for (const n of options.scorers) if (n > 1) ratios[`scaling${n}`] = median(runs.map((r) => r.e2e[n]! / r.e2e[1]!));
  return {
    runs,
    median: {
      store: median(runs.map((r) => r.store)),
      storeInterleaved: median(runs.map((r) => r.storeInterleaved)),
      e2e,
      e2eCpu,
      zincrby: median(runs.map((r) => r.zincrby)),
      ratios,
    },
  };
}
