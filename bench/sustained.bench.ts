/**
 * `pnpm bench:sustained` — docs/operations.md §7 "Whole pipeline": the four services as real
 * processes (as scripts/services.ts runs them) on one machine with Kafka, Redis and Postgres, fed
 * the demo's kind of traffic (scripts/demo-traffic.ts) in POSTs of 100 events at fixed rates.
 *
 * 1. Sustained rate: at each offered rate, events are posted for BENCH_PIPELINE_SECONDS while both
 *    consumer groups' lag (end offsets − committed offsets of the events topic) is sampled every
 *    second. A rate holds when ingest accepted what was offered (≥ 97 %, every POST 202) and
 *    each group's lag is bounded: at the end it is under two seconds of traffic, or its line
 *    fitted over the last two thirds of the window grows by less than 3 % of the rate per second.
 *    The search doubles from BENCH_PIPELINE_START until a rate fails, then
 *    halves the interval BENCH_PIPELINE_STEPS times; between rates the groups drain (see `drain`).
 * 2. Freshness at each of BENCH_FRESHNESS_RATES (1 000 events/s, half the highest holding rate —
 *    SPEC §7's point — and that rate itself): POST 202 of a probe event (a click of a new
 *    person) → the profile answering through the query API with its interest (Redis) and its
 *    event count (Postgres); p50/p99 over the probes; beside them, how long each service's and Redis's main
 *    thread waited runnable for a CPU in the window against how long it ran (bench/proc-cpu.ts mainThreadSched).
 * 3. CPU per event: over every measured window, the CPU each process spent (bench/proc-cpu.ts:
 *    utime + stime from /proc/<pid>/stat) divided by the events accepted in it — the four services,
 *    the Kafka broker's JVM and Redis (the processes listening on their ports), the Postgres
 *    backends connected to the run's database — against SPEC §7's 200 µs per event; and the same
 *    above each process's idle rate, measured over BENCH_IDLE_SECONDS without traffic just before.
 * Everything (topics, groups, Redis prefix, schema) is the run's own and removed at the end.
 * Printed, never asserted.
 *
 * Options (env): BENCH_PREFIX (bench), BENCH_PORT (first of four free ports; 24220),
 * BENCH_PIPELINE_START (2500), BENCH_PIPELINE_MAX (40000), BENCH_PIPELINE_STEPS (2),
 * BENCH_PIPELINE_SECONDS (60), BENCH_FRESHNESS_SECONDS (20), BENCH_FRESHNESS_RATES (1000,half,top), BENCH_IDLE_SECONDS
 * (5),
 * BENCH_PIPELINE_PEOPLE (20000),
 * BENCH_LOG_LEVEL (info, as deployed), BENCH_SERVICE_LOG_DIR (unset: the services' logs are dropped; a directory: each
 * service's log lines are appended to `<service>.log` there),
 * BENCH_STALL_TRACE (off; 1: bench/stall-trace.cjs preloaded into the four services — event-loop gaps, GC
 * pauses, slow kafkajs requests and batches, slow Redis replies, as `TRACE` lines on stderr — and, in each
 * freshness window, every probe's wall-clock time and latency, the machine's runnable tasks and busiest
 * processes around the slow ones, and Redis's LATENCY and SLOWLOG: bench/stall-window.ts),
 * BENCH_CPU_PROF_DIR (off; a directory: the services of BENCH_CPU_PROF_SERVICES — comma-separated, default
 * `scorer` — run under `node --cpu-prof` and write their profile there when they stop; read one with
 * `node bench/cpu-profile-summary.cjs FILE`),
 * BENCH_SERVICES_FROM (tsx: each service's src/main.ts under `node --import tsx`, as scripts/services.ts runs them;
 * bundle: each from its single-file bundle, .data/bundle/<service>/main.cjs, built by scripts/build-services.ts at
 * the start of the run — our modules in one scope, without tsx's per-module `__export` getters).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, openSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { closePool, createPool } from '@pstream/platform';
import { migrate } from '@pstream/profile-store';
import { loadConfig } from '@pstream/scorer/config';
import { createDemoTraffic, type DemoEvent } from '../scripts/demo-traffic';
import { stop, waitReady } from './ingest.bench';
import { CpuMeter, listeningPid, type CpuWindow, type ProcessGroup } from './proc-cpu';
import { pct } from './redis-bench';
import { removeRunData } from './reads.bench';
import { StallWindow } from './stall-window';
import { bundlePath, buildServices } from '../scripts/build-services';

const ROOT = path.resolve(__dirname, '..');
const TRACE_PRELOAD = path.join(ROOT, 'bench/stall-trace.cjs');
const BATCH = 100;
const WRITE_KEY = 'bench-pipeline-key';
const TOKEN = 'bench-pipeline-token';
const SERVICES = ['ingest', 'query-api', 'scorer', 'segmenter'] as const;
type Service = (typeof SERVICES)[number];

export type SustainedOptions = {
  prefix: string;
  port: number;
  start: number;
  max: number;
  steps: number;
  seconds: number;
  freshnessSeconds: number;
  /** Length of the window without traffic measured before each measured window (0: none). */
  idleSeconds: number;
  /**
   * Rates freshness is measured at: numbers, `half` (of the sustained rate, SPEC §7) and `top` (the sustained rate
   * itself).
   */
  freshnessRates: (number | 'half' | 'top')[];
  people: number;
  /** BENCH_STALL_TRACE=1: trace what holds the probes up (see the header). */
  stallTrace?: boolean;
  log?: (line: string) => void;
};

/** SPEC §7: 10 000 events/s on 2 cores is 200 µs of CPU per event, every process included. */
export const CPU_BUDGET_US = 200;

/** Processes whose CPU is the pipeline's, in the order the table lists them. */
const PIPELINE_GROUPS = [
  'ingest',
  'scorer',
  'segmenter',
  'query-api',
  'Kafka broker (JVM)',
  'Redis',
  'Postgres backends (this database)',
] as const;
/** The consumer group whose events each consumer-side process works for. */
const CONSUMER_SIDE: Record<string, 'scorer' | 'segmenter' | undefined> = {
  scorer: 'scorer',
  Redis: 'scorer',
  segmenter: 'segmenter',
  'Postgres backends (this database)': 'segmenter',
};
/** Measured beside them, not counted against the budget. */
const BESIDE_GROUPS = [
  'Postgres background (WAL writer, checkpointer…; machine-wide)',
  'load generator (this bench)',
] as const;

/** The CPU of each process per accepted event over one measured window. */
export type CpuBudget = {
  /** Events accepted (202) in the window: the denominator. */
  events: number;
  seconds: number;
  rows: {
    name: string;
    cpuSeconds: number;
    usPerEvent: number;
    idleCores: number;
    aboveIdleUs: number;
    perProcessedUs: number;
    pids: number;
    counted: boolean;
    /**
     * Seconds the process's main thread ran, and waited runnable for a CPU, in the window (proc-cpu.ts
     * mainThreadSched; for the Postgres backends, summed over them): waiting well above running, the machine had no
     * core for it, whatever its own cost.
     */
    ran: number;
    waited: number;
  }[];
  /** Events each consumer group got through in the window (fewer than accepted when its lag grew). */
  consumed: { scorer: number; segmenter: number };
  /** µs per event of the counted rows: the figure against CPU_BUDGET_US. */
  totalUs: number;
  /** The same with the consumer side (scorer and Redis, segmenter and Postgres) per event its group got through. */
  perProcessedUs: number;
  /**
   * The same above each process's idle rate (measured without traffic just before): the part that grows with events.
   */
  aboveIdleUs: number;
  /** The whole machine's busy CPU per event, and what of it no measured process explains (other work on the box). */
  machineUs: number;
  othersUs: number;
  loadavg: number[];
};

export type RateResult = {
  rate: number;
  achieved: number;
  holds: boolean;
  why: string;
  lagSlope: Record<string, number>;
  lagEnd: Record<string, number>;
  cpu: CpuBudget;
};
/**
 * Freshness to both stores (p50, p99, max), and to each store alone: the interest (Redis, the scorer) and the click
 * count (Postgres, the segmenter).
 */
export type Freshness = {
  rate: number;
  achieved: number;
  probes: number;
  p50: number;
  p99: number;
  max: number;
  redis: { p50: number; p99: number };
  postgres: { p50: number; p99: number };
  cpu: CpuBudget;
};
export type SustainedFigures = {
  /** Every rate tried, in order. */
  tried: RateResult[];
  /** The highest offered rate that held (0 when none did). */
  sustained: number;
  /** Freshness at each rate of BENCH_FRESHNESS_RATES that applies. */
  freshness: Freshness[];
  /** The CPU budget's window: the sustained rate's, or when no rate held, the lowest rate's (marked). */
  budget?: { rate: number; held: boolean; title: string; cpu: CpuBudget };
};

/**
 * Per-event CPU from a window's per-group seconds, and above each group's rate in `idle` (a window
 * without traffic just before, when there was one): the broker and Redis serve the whole machine,
 * and every service polls and samples while idle, so part of their CPU does not grow with events.
 */
function budgetOf(
  w: CpuWindow,
  events: number,
  idle: CpuWindow | undefined,
  consumed: { scorer: number; segmenter: number },
): CpuBudget {
  const per = (s: number, n = events) => (n > 0 ? (s * 1e6) / n : 0);
  const rows = [...PIPELINE_GROUPS, ...BESIDE_GROUPS].map((name) => {
    const g = w.byGroup.get(name) ?? { cpu: 0, pids: 0 };
    const t = w.mainThreads.get(name) ?? { ran: 0, waited: 0 };
    const i = idle?.byGroup.get(name);
    const idleCores = i === undefined || idle!.seconds <= 0 ? 0 : i.cpu / idle!.seconds;
    const counted = (PIPELINE_GROUPS as readonly string[]).includes(name);
    const group = CONSUMER_SIDE[name];
    const perProcessedUs = group === undefined ? per(g.cpu) : per(g.cpu, consumed[group]);
    return {
      name,
      cpuSeconds: g.cpu,
      usPerEvent: per(g.cpu),
      idleCores,
      aboveIdleUs: per(Math.max(0, g.cpu - idleCores * w.seconds)),
      perProcessedUs,
      pids: g.pids,
      counted,
      ran: t.ran,
      waited: t.waited,
    };
  });
  const measured = rows.reduce((s, r) => s + r.cpuSeconds, 0);
  const counted = rows.filter((r) => r.counted);
  return {
    events,
    seconds: w.seconds,
    rows,
    consumed,
    totalUs: counted.reduce((s, r) => s + r.usPerEvent, 0),
    perProcessedUs: counted.reduce((s, r) => s + r.perProcessedUs, 0),
    aboveIdleUs: counted.reduce((s, r) => s + r.aboveIdleUs, 0),
    machineUs: per(w.machineBusy),
    othersUs: per(Math.max(0, w.machineBusy - measured)),
    loadavg: loadavg(),
  };
}

const fmtN = (x: number) => Math.round(x).toLocaleString('en-US');

/** The per-event CPU table (markdown) of one window, with the budget line. */
export function cpuBudgetTable(b: CpuBudget, title: string): string {
  const us = (x: number) => x.toFixed(1);
  const cores = (s: number) => (b.seconds > 0 ? (s / b.seconds).toFixed(2) : '—');
  return [
    `${title}: ${fmtN(b.events)} events accepted in ${b.seconds.toFixed(1)} s, ${fmtN(b.consumed.scorer)} through the scorer, ${fmtN(b.consumed.segmenter)} through the segmenter; load average ${b.loadavg.map((l) => l.toFixed(2)).join(' ')}`,
    '',
    '| process | pids | CPU s | cores busy | cores busy idle, just before | µs CPU per event accepted | above idle | per event its group got through |',
    '|---|---|---|---|---|---|---|---|',
    ...b.rows.map(
      (r) =>
        `| ${r.counted ? r.name : `(${r.name}, not counted)`} | ${r.pids} | ${r.cpuSeconds.toFixed(2)} | ${cores(r.cpuSeconds)} | ${r.idleCores.toFixed(3)} | ${us(r.usPerEvent)} | ${us(r.aboveIdleUs)} | ${us(r.perProcessedUs)} |`,
    ),
    `| **pipeline total** (budget ${CPU_BUDGET_US} µs = 10 000 events/s on 2 cores) | | | | | **${us(b.totalUs)}** (${(b.totalUs / CPU_BUDGET_US).toFixed(2)} × budget) | **${us(b.aboveIdleUs)}** (${(b.aboveIdleUs / CPU_BUDGET_US).toFixed(2)} ×) | **${us(b.perProcessedUs)}** (${(b.perProcessedUs / CPU_BUDGET_US).toFixed(2)} ×) |`,
    `| (whole machine busy; of it, outside every process above) | | | | | ${us(b.machineUs)} (${us(b.othersUs)}) | | |`,
  ].join('\n');
}

export function sustainedOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): SustainedOptions {
  const num = (name: string, fallback: number) => {
    const v = Number(env[name] ?? fallback);
    if (!Number.isFinite(v) || v < 0) throw new Error(`${name} must be a non-negative number, got ${env[name]}`);
    return v;
  };
  return {
    prefix: env.BENCH_PREFIX ?? 'bench',
    port: num('BENCH_PORT', 24_220),
    start: num('BENCH_PIPELINE_START', 2500),
    max: num('BENCH_PIPELINE_MAX', 40_000),
    steps: num('BENCH_PIPELINE_STEPS', 2),
    seconds: num('BENCH_PIPELINE_SECONDS', 60),
    freshnessSeconds: num('BENCH_FRESHNESS_SECONDS', 20),
    idleSeconds: num('BENCH_IDLE_SECONDS', 5),
    freshnessRates: (env.BENCH_FRESHNESS_RATES ?? '1000,half,top').split(',').map((t) => {
      const v = t.trim();
      if (v === 'half' || v === 'top') return v;
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0)
        throw new Error(`BENCH_FRESHNESS_RATES lists events/s, "half" or "top", got "${v}"`);
      return n;
    }),
    people: num('BENCH_PIPELINE_PEOPLE', 20_000),
    stallTrace: env.BENCH_STALL_TRACE === '1',
  };
}

/**
 * How long the services' and Redis's main threads waited runnable for a CPU in a window, against how long they ran:
 * "scorer 1.9 s (3.1× its run)". Above 1×, the thread's work waited on the machine longer than it took.
 */
export function runQueueWaits(b: CpuBudget): string {
  return b.rows
    .filter((r) => ['ingest', 'scorer', 'segmenter', 'query-api', 'Redis'].includes(r.name))
    .map((r) => `${r.name} ${r.waited.toFixed(1)} s (${r.ran > 0 ? (r.waited / r.ran).toFixed(1) : '—'}× its run)`)
    .join(', ');
}

/** The three slowest probes as "latency ms @ seconds into the window". */
function worst(timeline: [number, number][]): string {
  return [...timeline]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([t, ms]) => `${ms.toFixed(0)} ms @ ${t.toFixed(1)} s`)
    .join(', ');
}

/** Least-squares slope of y over x. */
function slope(points: [number, number][]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, p) => s + p[0], 0) / n;
  const my = points.reduce((s, p) => s + p[1], 0) / n;
  const sxy = points.reduce((s, p) => s + (p[0] - mx) * (p[1] - my), 0);
  const sxx = points.reduce((s, p) => s + (p[0] - mx) ** 2, 0);
  return sxx === 0 ? 0 : sxy / sxx;
}

/** Each group's lag on `topic`: the sum over partitions of end offset − committed offset. */
async function lagOf(admin: Admin, topic: string, groups: string[]): Promise<Record<string, number>> {
  const ends = await admin.fetchTopicOffsets(topic);
  const out: Record<string, number> = {};
  for (const groupId of groups) {
    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
    out[groupId] = ends.reduce((sum, e) => {
      const c = Number(committed?.partitions.find((p) => p.partition === e.partition)?.offset ?? -1);
      return sum + Number(e.high) - (c >= 0 ? c : Number(e.low));
    }, 0);
  }
  return out;
}

/** Endless demo traffic: sessions of live people, cut into POST bodies of BATCH events. */
function trafficSource(people: number) {
  const { people: all, session, pick } = createDemoTraffic(11, people);
  const live = all.filter((p) => p.lastActiveDaysAgo < 10);
  const pending: DemoEvent[] = [];
  let n = 0;
  return (extra?: DemoEvent): DemoEvent[] => {
    while (pending.length < BATCH) pending.push(...session(pick(live), Date.now() - 60_000, `b${n++}`));
    const now = Date.now();
    const events = pending.splice(0, extra ? BATCH - 1 : BATCH);
    for (const e of events) if (Date.parse(e.occurredAt as string) > now) e.occurredAt = new Date(now).toISOString();
    return extra ? [extra, ...events] : events;
  };
}

/**
 * Posts batches at `rate` events/s for `seconds` (checked every 100 ms); `onTick` may add a probe
 * event to a tick's first batch and learns when that POST was accepted.
 */
async function offer(
  ingestUrl: string,
  next: ReturnType<typeof trafficSource>,
  rate: number,
  seconds: number,
  onTick?: (tick: number) => { probe: DemoEvent; accepted: (at: number) => void } | undefined,
) {
  const tickMs = 100;
  const inFlight = new Set<Promise<void>>();
  let accepted = 0;
  const refused = new Map<string, number>(); // by status, or the fetch error's message
  const count = (why: string) => refused.set(why, (refused.get(why) ?? 0) + 1);
  let posted = 0;
  const started = performance.now();
  for (let tick = 0; performance.now() - started < seconds * 1000; tick++) {
    // batches due by now, so a late tick catches up rather than lowering the rate
    const due = Math.floor(((performance.now() - started) / 1000) * (rate / BATCH)) + 1;
    const probe = onTick?.(tick);
    for (let b = 0; posted < due; b++, posted++) {
      const events = next(b === 0 ? probe?.probe : undefined);
      const p = fetch(`${ingestUrl}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-write-key': WRITE_KEY },
        body: JSON.stringify({ events }),
      }).then(
        async (res) => {
          await res.arrayBuffer();
          if (res.status === 202) {
            accepted += events.length;
            if (b === 0) probe?.accepted(performance.now());
          } else count(String(res.status));
        },
        (err: unknown) => void count((err as Error).message),
      );
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    }
    const wait = started + (tick + 1) * tickMs - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  const elapsed = (performance.now() - started) / 1000;
  await Promise.all(inFlight);
  return { achieved: accepted / elapsed, accepted, refused };
}

/** How the services run: `tsx` (the default, as scripts/services.ts runs them) or `bundle`; see the header. */
function servicesFrom(env: NodeJS.ProcessEnv): 'tsx' | 'bundle' {
  const from = env.BENCH_SERVICES_FROM ?? 'tsx';
  if (from !== 'tsx' && from !== 'bundle') throw new Error(`BENCH_SERVICES_FROM is tsx or bundle, got "${from}"`);
  return from;
}

/** Starts the four services as processes on ports `port`…`port + 3`, with the run's own names. */
function startServices(env: NodeJS.ProcessEnv, port: number, trace = false): Map<Service, ChildProcess> {
  const ports: Record<Service, number> = { ingest: port, 'query-api': port + 1, scorer: port + 2, segmenter: port + 3 };
  const common = {
    ...env,
    INGEST_HOST: '127.0.0.1',
    INGEST_PORT: String(ports.ingest),
    QUERY_API_HOST: '127.0.0.1',
    QUERY_API_PORT: String(ports['query-api']),
    SCORER_HOST: '127.0.0.1',
    SCORER_PORT: String(ports.scorer),
    SEGMENTER_HOST: '127.0.0.1',
    SEGMENTER_PORT: String(ports.segmenter),
    WRITE_KEYS: `${WRITE_KEY}=bench`,
    API_TOKENS: `${TOKEN}=profiles:read`,
    RATE_LIMIT_PER_SEC: '1000000',
    RATE_LIMIT_BURST: '1000000',
    LAG_GROUPS: `${env.SCORER_GROUP},${env.SEGMENTER_GROUP}`,
    LOG_LEVEL: env.BENCH_LOG_LEVEL ?? 'info',
    LOG_FORMAT: 'json',
    ...(trace && { NODE_OPTIONS: `${env.NODE_OPTIONS ?? ''} --require ${TRACE_PRELOAD}`.trim() }),
  };
  const logDir = env.BENCH_SERVICE_LOG_DIR;
  if (logDir) mkdirSync(logDir, { recursive: true });
  const profDir = env.BENCH_CPU_PROF_DIR;
  const profiled = new Set((env.BENCH_CPU_PROF_SERVICES ?? 'scorer').split(',').map((s) => s.trim()));
  const profile = (name: Service) =>
    profDir && profiled.has(name) ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(profDir)}`] : [];
  const main = (name: Service) =>
    servicesFrom(env) === 'bundle'
      ? [bundlePath(name)]
      : ['--import', 'tsx', path.join(ROOT, `services/${name}/src/main.ts`)];
  return new Map(
    SERVICES.map((name) => [
      name,
      spawn(process.execPath, [...profile(name), ...main(name)], {
        cwd: ROOT,
        stdio: ['ignore', logDir ? openSync(path.join(logDir, `${name}.log`), 'a') : 'ignore', 'inherit'],
        env: common,
      }),
    ]),
  );
}

/**
 * The processes whose CPU the budget counts: the four services (their own pids), the Kafka broker
 * and Redis (whoever listens on their ports), the Postgres backends connected to the run's database
 * (the bench's own sampling connection excluded) — and, beside them, Postgres's background processes
 * and this bench process, the load generator.
 */
function processGroups(
  services: Map<Service, ChildProcess>,
  config: ReturnType<typeof loadConfig>,
  pool: ReturnType<typeof createPool>,
): ProcessGroup[] {
  const portOf = (hostPort: string, fallback: number) => Number(/:(\d+)$/.exec(hostPort)?.[1] ?? fallback);
  const listening = (port: number) => () => {
    const pid = listeningPid(port);
    return pid === undefined ? [] : [pid];
  };
  const backends = (clients: boolean) => async () =>
    (
      await pool.query<{ pid: number }>(
        clients
          ? "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
          : "SELECT pid FROM pg_stat_activity WHERE backend_type <> 'client backend'",
      )
    ).rows.map((r) => r.pid);
  const redisUrl = new URL(config.REDIS_URL);
  const own = (name: Service) => () => [services.get(name)!.pid!];
  return [
    { name: 'ingest', pids: own('ingest') },
    { name: 'scorer', pids: own('scorer') },
    { name: 'segmenter', pids: own('segmenter') },
    { name: 'query-api', pids: own('query-api') },
    { name: 'Kafka broker (JVM)', pids: listening(portOf(config.KAFKA_BROKERS[0]!, 9092)) },
    { name: 'Redis', pids: listening(Number(redisUrl.port || 6379)) },
    { name: 'Postgres backends (this database)', pids: backends(true) },
    { name: 'Postgres background (WAL writer, checkpointer…; machine-wide)', pids: backends(false) },
    { name: 'load generator (this bench)', pids: () => [process.pid] },
  ];
}

/** The whole-pipeline benchmark; see the header. */
export async function runSustainedBench(o: SustainedOptions): Promise<SustainedFigures> {
  const log = o.log ?? console.log;
  const id = randomBytes(4).toString('hex');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    EVENTS_TOPIC: `${o.prefix}.${id}.events`,
    DLQ_TOPIC: `${o.prefix}.${id}.dlq`,
    LIFECYCLE_TOPIC: `${o.prefix}.${id}.lifecycle`,
    AUDIENCES_TOPIC: `${o.prefix}.${id}.audiences`,
    REDIS_PREFIX: `${o.prefix}:${id}`,
    PG_SCHEMA: `${o.prefix}_${id}`,
    SCORER_GROUP: `${o.prefix}-${id}-scorer`,
    SEGMENTER_GROUP: `${o.prefix}-${id}-segmenter`,
  };
  const config = loadConfig(env);
  const groups = [env.SCORER_GROUP!, env.SEGMENTER_GROUP!];
  const topics = [env.EVENTS_TOPIC!, env.DLQ_TOPIC!, env.LIFECYCLE_TOPIC!, env.AUDIENCES_TOPIC!];
  const kafka = new Kafka({ clientId: 'bench-sustained', brokers: config.KAFKA_BROKERS, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const pool = createPool(config.DATABASE_URL, config.PG_SCHEMA, 'bench-sustained', 1);
  let services = new Map<Service, ChildProcess>();
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: topics.map((topic, i) => ({ topic, numPartitions: i === 0 ? 12 : 3 })),
    });
    await migrate(pool, config.PG_SCHEMA);
    // built on every run, so a bundle never runs older code than the checkout
    if (servicesFrom(env) === 'bundle') await buildServices();
    log(`services from: ${servicesFrom(env)}`);
    services = startServices(env, o.port, o.stallTrace);
    await Promise.all([0, 1, 2, 3].map((i) => waitReady(o.port + i)));
    const meter = new CpuMeter(processGroups(services, config, pool));
    /**
     * Samples the CPU of an idle window (BENCH_IDLE_SECONDS without traffic), then runs `f` (which answers the events
     * it had accepted) between two more samples.
     */
    const metered = async <T extends { accepted: number }>(f: () => Promise<T>): Promise<T & { cpu: CpuBudget }> => {
      const before = o.idleSeconds > 0 ? await meter.sample() : undefined;
      if (before) await new Promise((r) => setTimeout(r, o.idleSeconds * 1000));
      const [start, lagBefore] = [await meter.sample(), await lagOf(admin, env.EVENTS_TOPIC!, groups)];
      const r = await f();
      const [end, lagAfter] = [await meter.sample(), await lagOf(admin, env.EVENTS_TOPIC!, groups)];
      // what each group got through: what was accepted, less what its lag grew by
      const through = (g: string) => Math.max(0, r.accepted - (lagAfter[g]! - lagBefore[g]!));
      const consumed = { scorer: through(env.SCORER_GROUP!), segmenter: through(env.SEGMENTER_GROUP!) };
      return {
        ...r,
        cpu: budgetOf(CpuMeter.between(start, end), r.accepted, before && CpuMeter.between(before, start), consumed),
      };
    };
    const ingestUrl = `http://127.0.0.1:${o.port}`;
    const queryUrl = `http://127.0.0.1:${o.port + 1}`;
    const next = trafficSource(o.people);
    await offer(ingestUrl, next, 1000, 5); // warm-up: JIT, connections, group joins

    /**
     * Waits until every group's lag is under a second's worth of `rate` (`empty`: until it is 0, so a
     * freshness window does not start behind what the previous window left); gives up after 90 s, or
     * once the total has not fallen for 15 s (the consumers cannot catch up: waiting is wasted).
     */
    const drain = async (rate: number, empty = false) => {
      const deadline = Date.now() + 90_000;
      let best = Infinity;
      let bestAt = Date.now();
      for (;;) {
        const lag = await lagOf(admin, env.EVENTS_TOPIC!, groups);
        const total = Object.values(lag).reduce((a, b) => a + b, 0);
        if (total < best) [best, bestAt] = [total, Date.now()];
        if (
          Object.values(lag).every((l) => (empty ? l <= 0 : l < Math.max(rate, 1000))) ||
          Date.now() > deadline ||
          Date.now() - bestAt > 15_000
        )
          return lag;
        await new Promise((r) => setTimeout(r, 1000));
      }
    };

    const tryRate = async (rate: number): Promise<RateResult> => {
      await drain(rate);
      const samples: { t: number; lag: Record<string, number> }[] = [];
      const started = performance.now();
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          samples.push({ t: (performance.now() - started) / 1000, lag: await lagOf(admin, env.EVENTS_TOPIC!, groups) });
          await new Promise((r) => setTimeout(r, 1000));
        }
      })();
      const { achieved, refused, cpu } = await metered(() => offer(ingestUrl, next, rate, o.seconds));
      sampling = false;
      await sampler;
      const steady = samples.filter((s) => s.t >= o.seconds / 3);
      const lagSlope: Record<string, number> = {};
      const lagEnd: Record<string, number> = {};
      for (const g of groups) {
        const name = g.slice(g.lastIndexOf('-') + 1);
        lagSlope[name] = slope(steady.map((s) => [s.t, s.lag[g]!]));
        lagEnd[name] = samples.at(-1)?.lag[g] ?? 0;
      }
      const growing = Object.entries(lagSlope).filter(([g, s]) => s > 0.03 * rate && lagEnd[g]! > 2 * rate);
      const why =
        refused.size > 0
          ? `POSTs refused or failed: ${[...refused].map(([what, k]) => `${k}× ${what}`).join(', ')}`
          : achieved < 0.97 * rate
            ? `ingest accepted only ${Math.round(achieved)} events/s`
            : growing.length > 0
              ? growing.map(([g, s]) => `${g} lag grows ${Math.round(s)}/s`).join(', ')
              : 'lag bounded';
      const r = { rate, achieved, holds: why === 'lag bounded', why, lagSlope, lagEnd, cpu };
      log(
        `pipeline at ${rate} events/s offered: ${Math.round(achieved)} accepted/s; lag slope ${Object.entries(lagSlope)
          .map(([g, s]) => `${g} ${Math.round(s)}/s`)
          .join(', ')}; lag at end ${Object.entries(lagEnd)
          .map(([g, l]) => `${g} ${l}`)
          .join(', ')}; CPU ${cpu.totalUs.toFixed(0)} µs/event, ${cpu.aboveIdleUs.toFixed(0)} above idle (${cpu.rows
          .filter((x) => x.counted)
          .map((x) => `${x.name.split(' ')[0]} ${x.usPerEvent.toFixed(0)}`)
          .join(', ')}) → ${r.holds ? 'holds' : `fails (${why})`}`,
      );
      return r;
    };

    const tried: RateResult[] = [];
    let good = 0;
    let bad = 0;
    for (let rate = o.start; rate <= o.max; rate *= 2) {
      const r = await tryRate(rate);
      tried.push(r);
      if (!r.holds) {
        bad = rate;
        break;
      }
      good = rate;
    }
    for (let step = 0; step < o.steps && bad > 0; step++) {
      const rate = Math.round((good + bad) / 2 / 100) * 100;
      if (rate <= good || rate >= bad) break;
      const r = await tryRate(rate);
      tried.push(r);
      if (r.holds) good = rate;
      else bad = rate;
    }

    const freshness: Freshness[] = [];
    const freshnessRates = [
      ...new Set(o.freshnessRates.map((r) => (r === 'half' ? good / 2 : r === 'top' ? good : r))),
    ].filter((r) => r > 0 && (good === 0 || r <= good));
    for (const rate of o.freshnessSeconds > 0 ? freshnessRates : []) {
      // Empty, not just under a second's worth: the first probes would otherwise time the backlog of the
      // window before (after a rate that failed, up to a second of events per group), not the pipeline.
      const lagAtStart = await drain(rate, true);
      const latencies: number[] = [];
      /** When each probe was accepted, in seconds into the window, with its latency: where the worst one fell. */
      const timeline: [number, number][] = [];
      const windowStart = performance.now();
      const polls: Promise<void>[] = [];
      const probeId = (tick: number) => `${o.prefix}-fresh-${id}-${rate}-${tick}`;
      const read = async <T>(url: string): Promise<T | undefined> => {
        const res = await fetch(`${queryUrl}${url}`, { headers: { authorization: `Bearer ${TOKEN}` } });
        if (res.status === 200) return (await res.json()) as T;
        await res.arrayBuffer();
        return undefined;
      };
      /**
       * What the query API shows of the probe: its click count (Postgres: the profile answers 404 until
       * the segmenter wrote the person) and its interest (Redis) — read through the interests route while
       * the profile is not there yet, which answers as soon as either store knows the person.
       */
      const visible = async (who: string, redisSeen: boolean) => {
        const id = encodeURIComponent(who);
        const profile = await read<{ interests: unknown[]; stats: { events: Record<string, number> } }>(
          `/v1/profiles/${id}`,
        );
        const postgres = (profile?.stats.events.click ?? 0) > 0;
        let redis = redisSeen || (profile?.interests.length ?? 0) > 0;
        if (!redis)
          redis =
            ((await read<{ interests: unknown[] }>(`/v1/profiles/${id}/interests?limit=1`))?.interests.length ?? 0) > 0;
        return { redis, postgres };
      };
      const byStore = { redis: [] as number[], postgres: [] as number[] };
      /** With the stall trace: each probe's wall-clock acceptance and latencies, and the window's machine and Redis. */
      const probeTrace: { t: number; ms: number; redis: number; postgres: number }[] = [];
      const stallWindow = o.stallTrace ? new StallWindow(config.REDIS_URL) : undefined;
      await stallWindow?.start();
      const { achieved, cpu } = await metered(() =>
        offer(ingestUrl, next, rate, o.freshnessSeconds, (tick) => {
          if (tick % 2 !== 0) return undefined; // a probe every 200 ms
          const who = probeId(tick);
          return {
            probe: {
              userId: who,
              eventId: `${who}-click`,
              type: 'click',
              target: { type: 'product', id: 'p-1000' },
              tags: ['category:fresh'],
              occurredAt: new Date().toISOString(),
            },
            accepted: (at) =>
              void polls.push(
                (async () => {
                  const deadline = at + 60_000;
                  // every 25 ms: polling every few ms, a dozen outstanding probes alone would be more
                  // requests than the query API answers, and the probes would time their own queue
                  const seen: { redis?: number; postgres?: number } = {};
                  while (performance.now() < deadline) {
                    const v = await visible(who, seen.redis !== undefined);
                    const now = performance.now();
                    if (v.redis) seen.redis ??= now - at;
                    if (v.postgres) seen.postgres ??= now - at;
                    if (seen.redis !== undefined && seen.postgres !== undefined) break;
                    await new Promise((r) => setTimeout(r, 25));
                  }
                  latencies.push(performance.now() - at);
                  timeline.push([(at - windowStart) / 1000, performance.now() - at]);
                  byStore.redis.push(seen.redis ?? Infinity);
                  byStore.postgres.push(seen.postgres ?? Infinity);
                  probeTrace.push({
                    t: Date.now() - Math.round(performance.now() - at),
                    ms: Math.round(performance.now() - at),
                    redis: Math.round(seen.redis ?? -1),
                    postgres: Math.round(seen.postgres ?? -1),
                  });
                })(),
              ),
          };
        }),
      );
      await Promise.all(polls);
      if (stallWindow) {
        const redisLines = await stallWindow.stop();
        const slow = probeTrace.filter((p) => p.redis > 250 || p.ms > 400).map((p) => p.t);
        for (const p of probeTrace.sort((a, b) => a.t - b.t))
          log(`TRACE ${JSON.stringify({ t: p.t, ev: 'probe', rate, ms: p.ms, redis: p.redis, postgres: p.postgres })}`);
        for (const line of [...stallWindow.around(slow), ...redisLines]) log(line);
      }
      const store = (xs: number[]) => ({ p50: pct(xs, 50), p99: pct(xs, 99) });
      const f = {
        rate,
        achieved,
        probes: latencies.length,
        p50: pct(latencies, 50),
        p99: pct(latencies, 99),
        max: Math.max(...latencies),
        redis: store(byStore.redis),
        postgres: store(byStore.postgres),
        cpu,
      };
      freshness.push(f);
      log(
        `freshness at ${Math.round(achieved)} events/s (offered ${Math.round(rate)}; sustained ${good}): ${latencies.length} probes, p50 ${f.p50.toFixed(0)} ms, p99 ${f.p99.toFixed(0)} ms, max ${f.max.toFixed(0)} ms ` +
          `(Redis alone p50 ${f.redis.p50.toFixed(0)} / p99 ${f.redis.p99.toFixed(0)} ms, Postgres alone ${f.postgres.p50.toFixed(0)} / ${f.postgres.p99.toFixed(0)} ms); CPU ${cpu.totalUs.toFixed(0)} µs/event; ` +
          `lag at start ${Object.values(lagAtStart).join('/')}; slowest probes at ${worst(timeline)}; ` +
          `main threads waiting for a CPU: ${runQueueWaits(cpu)}`,
      );
    }
    const top = tried.find((t) => t.rate === good);
    const lowest = tried.reduce<RateResult | undefined>(
      (l, t) => (l === undefined || t.rate < l.rate ? t : l),
      undefined,
    );
    const budget = top
      ? { rate: good, held: true, title: `CPU per event at the sustained rate, ${good} events/s offered`, cpu: top.cpu }
      : lowest && {
          rate: lowest.rate,
          held: false,
          title: `CPU per event at ${lowest.rate} events/s offered (no rate held: ${lowest.why})`,
          cpu: lowest.cpu,
        };
    if (budget) log(`\n${cpuBudgetTable(budget.cpu, budget.title)}\n`);
    return { tried, sustained: good, freshness, ...(budget && { budget }) };
  } finally {
    await Promise.all([...services.values()].map(stop));
    await admin.deleteTopics({ topics }).catch(() => undefined);
    await admin.deleteGroups(groups).catch(() => undefined);
    await admin.disconnect();
    await closePool(pool);
    await removeRunData(config);
  }
}

if (require.main === module)
  void runSustainedBench(sustainedOptionsFromEnv())
    .then((f) =>
      console.log(
        `\nsustained: ${f.sustained} events/s${f.freshness.map((x) => `; freshness p99 ${x.p99.toFixed(0)} ms at ${Math.round(x.achieved)} events/s`).join('')}`,
      ),
    )
    .then(
      () => process.exit(0),
      (err: unknown) => (console.error(err), process.exit(1)),
    );
