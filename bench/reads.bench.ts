/**
 * `pnpm bench:reads` — docs/operations.md §7 "Reads": `GET /v1/profiles/{id}` from the query API
 * running as its own process (services/query-api/src/main.ts, as deployed), beside a no-op Fastify
 * route in a process of its own (bench/noop-server.ts), alternately in each round:
 *   - p50/p99 at a fixed 1 000 requests/s (autocannon's overall rate),
 *   - p50/p99 at 1 000 requests/s evenly paced (`paced`: one request due every millisecond, latency
 *     from its due time),
 *   - the same with ours and the no-op route taking turns in 500-ms slices of one window
 *     (`pacedInterleaved`: both meet the same background load; the figure the aim is held to), and
 *   - the most requests/s the process answers (16 connections, no rate).
 * autocannon's rate is a quota per connection per second: each of the 10 connections sends its 100
 * requests back to back as soon as its second starts (autocannon 8, lib/httpClient.js
 * `reqsMadeThisSecond`), so its "1 000 req/s" is a ~10-way closed-loop burst at full speed for the
 * first ~0.1-0.3 s of every second and nothing after; the paced figure is the load the issue's
 * "p99 at 1 000 req/s" names (BENCHMARKS.md "Reads", issue 21 sixth pass).
 * The profiles are real: a seeded stream applied by the segmenter's and the scorer's stores into a
 * schema and Redis prefix of the run's own, removed at the end. Printed, never asserted.
 *
 * Each max-rate run also reports the CPU per answered read of the query API process and of its
 * Postgres backends (/proc, bench/proc-cpu.ts).
 *
 * Options (env): BENCH_ROUNDS (3), BENCH_READ_SECONDS (8), BENCH_READ_PEOPLE (2000),
 * BENCH_PORT (first of five free ports; default 24210), BENCH_PREFIX (names of what the run creates; bench),
 * BENCH_READ_BASE (the root of another checkout, e.g. a worktree of main with its packages installed:
 * its query API runs as a third process on the same data, measured in each round before ours, and
 * every seeded id's answer from both is compared first, `computedAt` and decayed scores aside).
 * With `--profile`, the query API of one extra max-rate round runs under `node --cpu-prof`.
 * BENCH_READ_TRACE=1 loads bench/stall-trace.cjs into the query APIs and the no-op route (event-loop
 * gaps, GC pauses, new Postgres connections, answers over 25 ms, as `TRACE` lines on stderr) and
 * prints each load's start and end as `TRACE` lines too, to line them up.
 * BENCH_READ_SPLIT=1 loads bench/read-split.cjs into the query APIs and prints, per paced window,
 * p50/p99 of each part of a read (before the handler, the facts statement's queue and round trip,
 * Redis, after both answered) and what the slowest 1 % waited on (bench/read-split.ts).
 * BENCH_READ_EXPLAIN=1 prints `EXPLAIN (ANALYZE, BUFFERS)` of the facts statement as the query API
 * runs it (prepared, its generic plan) on the seeded data, for 1 id and for 8 ids.
 * BENCH_READ_BASE_NODE_OPTIONS: node options added to the BENCH_READ_BASE process's command line only
 * (with BENCH_READ_BASE=. an A/B of a V8 setting on the same code, e.g. `--max-semi-space-size=64`
 * or `--single-threaded-gc`, which NODE_OPTIONS refuses).
 * BENCH_READ_CAUSE=1 loads bench/tail-cause-preload.cjs into the query APIs and the no-op route and prints,
 * per paced window, where the slowest 1 % of requests waited: the client sending late, the server's
 * main thread waiting for a core (the kernel's run-queue wait) or in a GC pause, and each process's
 * run-queue wait and CPU over the window (bench/tail-cause.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import type { ProfileEvent, TopicMessage } from '@pstream/events';
import { normalizeEvent } from '@pstream/ingest/dialects';
import { createInterestStore } from '@pstream/interest-store';
import { DEFAULT_RULES } from '@pstream/lifecycle';
import { closePool, closeRedis, createLogger, createPool, createRedis, type Pool } from '@pstream/platform';
import { createConverter, createSegmentStore, FACTS_SQL, migrate } from '@pstream/profile-store';
import { loadConfig, storeOptions } from '@pstream/scorer/config';
import { prepareEvent } from '@pstream/scorer/score';
import { generateStream } from '@pstream/testkit/streams';
import { stop, summarizeProfile, waitReady } from './ingest.bench';
import { CpuMeter } from './proc-cpu';
import { pacedInterleaved } from './paced';
import { summarizeSplit } from './read-split';
import { processWaits, selfRunWait, summarizeCause, type CauseClient } from './tail-cause';
import { clearPrefix, median } from './redis-bench';

const ROOT = path.resolve(__dirname, '..');
const TRACE_PRELOAD = path.join(ROOT, 'bench/stall-trace.cjs');
const SPLIT_PRELOAD = path.join(ROOT, 'bench/read-split.cjs');
const CAUSE_PRELOAD = path.join(ROOT, 'bench/tail-cause-preload.cjs');
/** NODE_OPTIONS for a measured process: the stall trace preloaded when asked for, and `extra`. */
const nodeOptions = (env: NodeJS.ProcessEnv, extra = '') =>
  [env.NODE_OPTIONS ?? '', env.BENCH_READ_TRACE === '1' ? `--require ${TRACE_PRELOAD}` : '', extra]
    .filter((o) => o !== '')
    .join(' ') || undefined;
const DAY = 86_400_000;

/**
 * Each measured server (our query API, the base's, the no-op route) in a session of its own, so that
 * the kernel's CPU scheduler (autogroups: one per session) weighs it as a group of its own — as a
 * deployed service is (its own unit or container cgroup), and as Postgres and Redis are here —
 * instead of in the bench's group, where it shared one group's CPU share with the load generator
 * (BENCHMARKS.md "Reads", issue 21 ninth pass). BENCH_READ_SHARED_GROUP=1 puts them back in the bench's;
 * BENCH_READ_PLACEMENT=1 runs a second query API and no-op route in the bench's group as well and
 * adds both to each round's interleaved window (the two placements under the same load).
 */
const ownGroup = () => process.env.BENCH_READ_SHARED_GROUP !== '1';
/**
 * Servers started in a session of their own do not get the terminal's signals: ended when the bench exits or is
 * ended by a signal (handlers installed with the first such server, so benches importing this module keep theirs).
 */
const detachedChildren = new Set<ChildProcess>();
const endDetached = () => {
  for (const child of detachedChildren) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
};
let endOnSignals = false;
const placed = (child: ChildProcess, own: boolean): ChildProcess => {
  if (own) {
    if (!endOnSignals) {
      endOnSignals = true;
      process.on('exit', endDetached);
      for (const [signal, code] of [
        ['SIGINT', 130],
        ['SIGTERM', 143],
        ['SIGHUP', 129],
      ] as const)
        process.once(signal, () => {
          endDetached();
          process.exit(code);
        });
    }
    detachedChildren.add(child);
    child.once('exit', () => detachedChildren.delete(child));
  }
  return child;
};
const TOKEN = 'bench-read-token';

export type ReadFigures = {
  /**
   * Per round, in order: ours and the no-op route at 1 000 req/s (p50, p99 ms) and at full speed
   * (req/s), with BENCH_READ_BASE the other checkout's query API too.
   */
  rounds: { ours: Side; noop: Side; base?: Side }[];
  ours: Summary;
  noop: Summary;
  base?: Summary;
  /** With BENCH_READ_BASE: median of the per-round ratios ours ÷ base (max req/s). */
  baseMaxRatio?: number;
  /** Median of the per-round ratios ours ÷ no-op (p99) and ours ÷ no-op (max req/s). */
  p99Ratio: number;
  /** Median of the per-round ratios ours ÷ no-op of p99 at 1 000 req/s evenly paced (`paced`). */
  pacedP99Ratio: number;
  /** The same, ours and the no-op paced in alternating slices of one window (`pacedInterleaved`). */
  interleavedP99Ratio: number;
  maxRatio: number;
  profile?: string;
};
type Paced = { p50: number; p99: number; non2xx: number };
/** CPU per answered read at full speed (µs): the query API process and its Postgres backends. */
type ReadCpu = { nodeUs: number; pgUs: number };
/**
 * p50/p99 (ms) at 1 000 req/s evenly paced (`paced`), and the same in slices alternating with the
 * no-op route in one window (`pacedInterleaved`; the no-op's own figures there are its `il*`).
 */
type Even = { evenP50: number; evenP99: number; ilP50: number; ilP99: number };
type SplitWindow = { label: string; start: number; end: number };
type Side = Paced & Even & { max: number } & Partial<ReadCpu>;
type Summary = { p50: number; p99: number; max: number } & Even & Partial<ReadCpu>;

export type ReadOptions = {
  rounds: number;
  seconds: number;
  people: number;
  port: number;
  prefix: string;
  /** The root of another checkout whose query API is measured beside ours (BENCH_READ_BASE). */
  base?: string;
  profile?: boolean;
  log?: (line: string) => void;
};

export function readOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): ReadOptions {
  return {
    rounds: Number(env.BENCH_ROUNDS ?? 3),
    seconds: Number(env.BENCH_READ_SECONDS ?? 8),
    people: Number(env.BENCH_READ_PEOPLE ?? 2000),
    port: Number(env.BENCH_PORT ?? 24_210),
    prefix: env.BENCH_PREFIX ?? 'bench',
    ...(env.BENCH_READ_BASE && { base: path.resolve(env.BENCH_READ_BASE) }),
  };
}

/** Applies a seeded stream for `people` people through both stores; returns their profile keys. */
export async function seed(env: NodeJS.ProcessEnv, people: number): Promise<string[]> {
  const config = loadConfig(env);
  const now = Date.now();
  const generated = generateStream(7, people, now - 60 * DAY, now - 60_000, 16);
  const messages = generated.events.map((e) => {
    const r = normalizeEvent(e, { source: 'bench', now });
    if (!r.ok) throw new Error('invalid generated event');
    return r.value;
  });
  const pool = createPool(config.DATABASE_URL, config.PG_SCHEMA, 'bench-reads-seed', 2);
  const redis = createRedis(config, 'bench-reads-seed');
  try {
    await migrate(pool, config.PG_SCHEMA);
    const segments = createSegmentStore({
      pool,
      rules: DEFAULT_RULES,
      convert: createConverter('CNY', new Map()),
      log: createLogger('bench', 'warn'),
    });
    const interests = createInterestStore(redis, config.REDIS_PREFIX, storeOptions(config));
    for (let i = 0; i < messages.length; i += 500) {
      const chunk: ProfileEvent[] = messages.slice(i, i + 500);
      await segments.apply(
        chunk.map((value, j) => ({ value: value as TopicMessage, offset: String(i + j) })),
        { groupId: 'bench', topic: 'seed', partition: 0, lastOffset: String(i + chunk.length - 1) },
        now,
      );
      await interests.apply(chunk.map((m) => prepareEvent(m, new Map())));
    }
  } finally {
    await closePool(pool);
    await closeRedis(redis);
  }
  return generated.people;
}

/** What else a measured query API runs with: more node options, the per-read split's file. */
type ApiExtras = { nodeOptions?: string; splitFile?: string; causeFile?: string; ownGroup?: boolean };

function startQueryApi(
  env: NodeJS.ProcessEnv,
  port: number,
  cpuProfDir?: string,
  root = ROOT,
  extras: ApiExtras = {},
): ChildProcess {
  const split = [
    extras.splitFile === undefined ? '' : `--require ${SPLIT_PRELOAD}`,
    extras.causeFile === undefined ? '' : `--require ${CAUSE_PRELOAD}`,
  ].join(' ');
  const args = [
    // V8 flags NODE_OPTIONS refuses (e.g. --single-threaded-gc) go on the command line
    ...(extras.nodeOptions ?? '').split(' ').filter((a) => a !== ''),
    '--import',
    'tsx',
    ...(cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : []),
    path.join(root, 'services/query-api/src/main.ts'),
  ];
  const own = extras.ownGroup ?? ownGroup();
  return placed(
    spawn(process.execPath, args, {
      cwd: root,
      detached: own,
      stdio: ['ignore', 'ignore', 'inherit'],
      env: {
        ...env,
        QUERY_API_HOST: '127.0.0.1',
        QUERY_API_PORT: String(port),
        API_TOKENS: `${TOKEN}=profiles:read`,
        LAG_GROUPS: `${env.SCORER_GROUP},${env.SEGMENTER_GROUP}`,
        LOG_LEVEL: env.BENCH_LOG_LEVEL ?? 'info',
        LOG_FORMAT: 'json',
        NODE_OPTIONS: nodeOptions(env, split.trim()),
        ...(extras.splitFile !== undefined && { BENCH_READ_SPLIT_FILE: extras.splitFile }),
        ...(extras.causeFile !== undefined && { BENCH_READ_CAUSE_FILE: extras.causeFile }),
      },
    }),
    own,
  );
}

function startNoop(port: number, causeFile?: string, own = ownGroup()): ChildProcess {
  return placed(
    spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench/noop-server.ts')], {
      cwd: ROOT,
      detached: own,
      stdio: ['ignore', 'ignore', 'inherit'],
      env: {
        ...process.env,
        NOOP_PORT: String(port),
        NODE_OPTIONS: nodeOptions(process.env, causeFile === undefined ? '' : `--require ${CAUSE_PRELOAD}`),
        ...(causeFile !== undefined && { BENCH_READ_CAUSE_FILE: causeFile }),
      },
    }),
    own,
  );
}

/** One autocannon run over `ids` in turn; `rate` caps the requests/s of all connections together. */
async function load(url: string, ids: string[], seconds: number, rate?: number) {
  let i = 0;
  const mark = (phase: string) =>
    process.env.BENCH_READ_TRACE === '1' &&
    process.stderr.write(`TRACE ${JSON.stringify({ t: Date.now(), ev: `load-${phase}`, url, rate: rate ?? 'max' })}\n`);
  mark('start');
  const result = await autocannon({
    url,
    connections: rate ? 10 : 16,
    duration: seconds,
    ...(rate && { overallRate: rate }),
    headers: { authorization: `Bearer ${TOKEN}` },
    requests: [
      {
        setupRequest: (req) => ({
          ...req,
          path: `${new URL(url).pathname}${encodeURIComponent(ids[i++ % ids.length]!)}`,
        }),
      },
    ],
  });
  mark('end');
  return {
    p50: result.latency.p50,
    p99: result.latency.p99,
    reqPerSec: result.requests.average,
    non2xx: result.non2xx + result.errors + result.timeouts,
  };
}

/**
 * `rate` requests a second evenly paced over `seconds`: request k is due at k/rate s from the start
 * and is sent then (on one of `connections` keep-alive connections, 32 so that a slow moment queues
 * in the server rather than for a connection; when all are busy it queues for one), and its latency
 * counts from its due time, so a stall delays every request due during it (no coordinated
 * omission). p50/p99 in ms, two decimals.
 */
export async function paced(
  url: string,
  ids: string[],
  seconds: number,
  rate: number,
  connections = 32,
  cause?: { tag: string; records: CauseClient[] },
) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const { hostname, port, pathname } = new URL(url);
  const total = Math.round(seconds * rate);
  const latencies: number[] = [];
  let failed = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    let sent = 0;
    let settled = 0;
    const settle = (dueAt: number, ok: boolean, record?: CauseClient) => {
      const done = performance.now();
      latencies.push(done - dueAt);
      if (record) {
        record.done = performance.timeOrigin + done;
        record.waitDone = selfRunWait();
      }
      if (!ok) failed++;
      if (++settled === total) resolve();
    };
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - t0) * rate) / 1000) + 1);
      for (; sent < due; sent++) {
        const dueAt = t0 + (sent * 1000) / rate;
        const record: CauseClient | undefined = cause && {
          seq: `${cause.tag}:${sent}`,
          due: performance.timeOrigin + dueAt,
          sent: performance.timeOrigin + performance.now(),
          done: 0,
          waitSent: selfRunWait(),
          waitDone: 0,
        };
        if (record) cause!.records.push(record);
        http
          .get(
            {
              hostname,
              port,
              path: `${pathname}${encodeURIComponent(ids[sent % ids.length]!)}`,
              agent,
              headers: { authorization: `Bearer ${TOKEN}`, ...(record && { 'x-bench-seq': record.seq }) },
            },
            (res) => {
              res.resume();
              res.on('end', () => settle(dueAt, res.statusCode === 200, record));
            },
          )
          .on('error', () => settle(dueAt, false, record));
      }
      if (sent < total) setTimeout(tick, 1);
    };
    tick();
  });
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => Math.round(100 * latencies[Math.min(total - 1, Math.floor(q * total))]!) / 100;
  return { evenP50: at(0.5), evenP99: at(0.99), failed };
}

/**
 * A full-speed run against one query API, with the CPU per answered read of its process and of the
 * run database's `query-api` backends (only the API under load spends any).
 */
async function meteredLoad(url: string, ids: string[], seconds: number, api: ChildProcess, pool: Pool) {
  const meter = new CpuMeter([
    { name: 'node', pids: () => [api.pid!] },
    {
      name: 'pg',
      pids: async () =>
        (
          await pool.query<{ pid: number }>(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'query-api'",
          )
        ).rows.map((r) => r.pid),
    },
  ]);
  const start = await meter.sample();
  const r = await load(url, ids, seconds);
  const w = CpuMeter.between(start, await meter.sample());
  const reads = r.reqPerSec * seconds;
  const us = (group: string) => ((w.byGroup.get(group)?.cpu ?? 0) * 1e6) / Math.max(reads, 1);
  return { ...r, nodeUs: us('node'), pgUs: us('pg') };
}

/** The answer to `path` without what differs between two reads a moment apart: computedAt and decayed scores. */
async function comparable(url: string): Promise<string> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } });
  const text = await res.text();
  return `${res.status} ${text.replace(/"computedAt":"[^"]*"/, '').replace(/"(score|value)":-?[\d.e+-]+/g, '"$1":_')}`;
}

/** The read benchmark: seeds, starts both processes, alternates ours and the no-op route, cleans up. */
export async function runReadBench(o: ReadOptions): Promise<ReadFigures> {
  const log = o.log ?? console.log;
  const id = randomBytes(4).toString('hex');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PG_SCHEMA: `${o.prefix}_reads_${id}`,
    REDIS_PREFIX: `${o.prefix}:reads:${id}`,
    SCORER_GROUP: `${o.prefix}-reads-${id}-scorer`,
    SEGMENTER_GROUP: `${o.prefix}-reads-${id}-segmenter`,
  };
  const config = loadConfig(env);
  const [qPort, nPort, bPort] = [o.port, o.port + 1, o.port + 2];
  const children: ChildProcess[] = [];
  const pool = createPool(config.DATABASE_URL, 'public', 'bench-reads-cpu', 1);
  try {
    const t0 = Date.now();
    const people = await seed(env, o.people);
    log(`reads: ${people.length} profiles seeded in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    if (process.env.BENCH_READ_EXPLAIN === '1') log(await explainFacts(env, people));
    const splitDir = process.env.BENCH_READ_SPLIT === '1' ? mkdtempSync(path.join(tmpdir(), 'read-split-')) : undefined;
    const splitFile = (side: string) => (splitDir === undefined ? undefined : path.join(splitDir, `${side}.ndjson`));
    const windows: { ours: SplitWindow[]; base: SplitWindow[] } = { ours: [], base: [] };
    const causeDir = process.env.BENCH_READ_CAUSE === '1' ? mkdtempSync(path.join(tmpdir(), 'read-cause-')) : undefined;
    const causeFile = (side: string) => (causeDir === undefined ? undefined : path.join(causeDir, `${side}.ndjson`));
    const causes: { label: string; side: string; records: CauseClient[]; procs: string }[] = [];
    const api = startQueryApi(env, qPort, undefined, ROOT, {
      splitFile: splitFile('ours'),
      causeFile: causeFile('ours'),
    });
    const baseApi =
      o.base === undefined
        ? undefined
        : startQueryApi(env, bPort, undefined, o.base, {
            nodeOptions: process.env.BENCH_READ_BASE_NODE_OPTIONS,
            splitFile: splitFile('base'),
            causeFile: causeFile('base'),
          });
    const noopProc = startNoop(nPort, causeFile('noop'));
    // BENCH_READ_PLACEMENT: our query API and the no-op route again, in the bench's own group
    const [sqPort, snPort] = [o.port + 3, o.port + 4];
    const placement =
      process.env.BENCH_READ_PLACEMENT === '1'
        ? [startQueryApi(env, sqPort, undefined, ROOT, { ownGroup: false }), startNoop(snPort, undefined, false)]
        : [];
    children.push(api, noopProc, ...(baseApi ? [baseApi] : []), ...placement);
    /**
     * `paced` with BENCH_READ_CAUSE: each request's client-side instants kept for summarizeCause, and
     * the window's run-queue wait and CPU per process (the server, its Postgres backends, Redis, this
     * client) and the machine's CPU pressure (/proc/pressure/cpu, `some`: time anything waited).
     */
    const redisPid = causeDir === undefined ? 0 : await redisServerPid(env);
    const tracedPaced = async (side: 'ours' | 'noop' | 'base', label: string, url: string, server: ChildProcess) => {
      if (causeDir === undefined) return paced(url, people, o.seconds, 1000);
      const pgPids = async () =>
        side === 'noop'
          ? []
          : (
              await pool.query<{ pid: number }>(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'query-api'",
              )
            ).rows.map((r) => r.pid);
      const pg = await pgPids();
      const groups = { server: [server.pid!], pg, redis: [redisPid], client: [process.pid] };
      const snap = () => ({
        procs: new Map(Object.entries(groups).map(([k, pids]) => [k, processWaits(pids)])),
        psi: cpuPressureMs(),
      });
      const before = snap();
      const records: CauseClient[] = [];
      const r = await paced(url, people, o.seconds, 1000, 32, { tag: label, records });
      const after = snap();
      const procs = Object.keys(groups)
        .map((k) => {
          const a = after.procs.get(k)!;
          const b = before.procs.get(k)!;
          return `${k} wait ${Math.round(a.wait - b.wait)} / cpu ${Math.round(a.cpu - b.cpu)}`;
        })
        .join(', ');
      causes.push({
        label,
        side,
        records,
        procs: `${procs}; machine CPU pressure ${Math.round(after.psi - before.psi)} ms`,
      });
      return r;
    };
    await Promise.all([
      waitReady(qPort),
      waitReady(nPort),
      ...(baseApi ? [waitReady(bPort)] : []),
      ...(placement.length > 0 ? [waitReady(sqPort), waitReady(snPort)] : []),
    ]);
    const sharedUrls =
      placement.length > 0 ? [`http://127.0.0.1:${sqPort}/v1/profiles/`, `http://127.0.0.1:${snPort}/noop/`] : [];
    for (const url of sharedUrls) await load(url, people, 3); // warm-up
    const ours = `http://127.0.0.1:${qPort}/v1/profiles/`;
    const noop = `http://127.0.0.1:${nPort}/noop/`;
    const base = `http://127.0.0.1:${bPort}/v1/profiles/`;
    // the same checkout as base (an A/B of BENCH_READ_BASE_NODE_OPTIONS): the same code, nothing to compare
    if (baseApi && o.base !== ROOT) {
      // every seeded id and one nobody has: the same answers (status and body) from both
      let differ = 0;
      for (const id of [...people, 'nobody-at-all']) {
        const path = encodeURIComponent(id);
        const [a, b] = await Promise.all([comparable(ours + path), comparable(base + path)]);
        if (a !== b && differ++ < 3) log(`reads: answers differ for ${id}:\n  ours ${a}\n  base ${b}`);
      }
      log(`reads: answers of ours and base compared for ${people.length + 1} ids, ${differ} differ`);
    }
    if (baseApi) await load(base, people, 3);
    await load(ours, people, 3); // warm-up: JIT, pools, prepared statements
    await load(noop, people, 3);
    const rounds: ReadFigures['rounds'] = [];
    const cpu = (m: { nodeUs: number; pgUs: number }) => `${Math.round(m.nodeUs)}+${Math.round(m.pgUs)} µs`;
    for (let round = 1; round <= o.rounds; round++) {
      let b: Side | undefined;
      if (baseApi) {
        const bp = await load(base, people, o.seconds, 1000);
        const bs = Date.now();
        const be = await tracedPaced('base', `base round ${round}`, base, baseApi);
        windows.base.push({ label: `split base round ${round}`, start: bs, end: Date.now() });
        const bm = await meteredLoad(base, people, o.seconds, baseApi, pool);
        b = {
          ...bp,
          ...be,
          ilP50: NaN, // set by the round's interleaved window below
          ilP99: NaN,
          max: bm.reqPerSec,
          non2xx: bp.non2xx + be.failed + bm.non2xx,
          nodeUs: bm.nodeUs,
          pgUs: bm.pgUs,
        };
      }
      const op = await load(ours, people, o.seconds, 1000);
      const np = await load(noop, people, o.seconds, 1000);
      const os = Date.now();
      const oe = await tracedPaced('ours', `ours round ${round}`, ours, api);
      windows.ours.push({ label: `split ours round ${round}`, start: os, end: Date.now() });
      const ne = await tracedPaced('noop', `no-op round ${round}`, noop, noopProc);
      const [oi, ni, ...more] = await pacedInterleaved(
        [ours, noop, ...sharedUrls, ...(baseApi ? [base] : [])],
        people,
        o.seconds,
        1000,
        { authorization: `Bearer ${TOKEN}` },
      );
      const bi = baseApi ? more.pop() : undefined;
      if (b && bi) Object.assign(b, { ilP50: bi.p50, ilP99: bi.p99, non2xx: b.non2xx + bi.failed });
      if (more.length === 2)
        log(
          `reads round ${round}: interleaved, in the bench's own group: ours p50 ${more[0]!.p50} ms p99 ${more[0]!.p99} ms, no-op p50 ${more[1]!.p50} ms p99 ${more[1]!.p99} ms (×${(more[0]!.p99 / more[1]!.p99).toFixed(2)}); in groups of their own: ours p99 ${oi!.p99} ms, no-op p99 ${ni!.p99} ms (×${(oi!.p99 / ni!.p99).toFixed(2)})`,
        );
      const om = await meteredLoad(ours, people, o.seconds, api, pool);
      const nm = await load(noop, people, o.seconds);
      rounds.push({
        ours: {
          ...op,
          ...oe,
          ilP50: oi!.p50,
          ilP99: oi!.p99,
          max: om.reqPerSec,
          non2xx: op.non2xx + oe.failed + oi!.failed + om.non2xx,
          nodeUs: om.nodeUs,
          pgUs: om.pgUs,
        },
        noop: {
          ...np,
          ...ne,
          ilP50: ni!.p50,
          ilP99: ni!.p99,
          max: nm.reqPerSec,
          non2xx: np.non2xx + ne.failed + ni!.failed + nm.non2xx,
        },
        ...(b && { base: b }),
      });
      log(
        `reads round ${round}: at 1000/s ours p50 ${op.p50} ms p99 ${op.p99} ms, no-op p50 ${np.p50} ms p99 ${np.p99} ms; evenly paced ours p50 ${oe.evenP50} ms p99 ${oe.evenP99} ms, no-op p50 ${ne.evenP50} ms p99 ${ne.evenP99} ms; interleaved ours p50 ${oi!.p50} ms p99 ${oi!.p99} ms, no-op p50 ${ni!.p50} ms p99 ${ni!.p99} ms (×${(oi!.p99 / ni!.p99).toFixed(2)}); max ours ${Math.round(om.reqPerSec)} req/s (CPU per read node+pg ${cpu(om)}), no-op ${Math.round(nm.reqPerSec)} req/s (non-2xx ours ${op.non2xx + oe.failed + om.non2xx})` +
          (b
            ? `; base p50 ${b.p50} ms p99 ${b.p99} ms, paced p50 ${b.evenP50} ms p99 ${b.evenP99} ms, interleaved p50 ${b.ilP50} ms p99 ${b.ilP99} ms, max ${Math.round(b.max)} req/s (${cpu({ nodeUs: b.nodeUs!, pgUs: b.pgUs! })}, non-2xx ${b.non2xx})`
            : '') +
          `; load average ${loadavg()
            .map((l) => l.toFixed(1))
            .join(' ')}`,
      );
    }
    if (splitDir !== undefined) {
      await new Promise((r) => setTimeout(r, 1500)); // the preload writes its lines every second
      for (const side of ['ours', 'base'] as const)
        if (windows[side].length > 0) for (const line of summarizeSplit(splitFile(side)!, windows[side])) log(line);
    }
    if (causeDir !== undefined) {
      await new Promise((r) => setTimeout(r, 1500)); // the preload writes its lines every second
      for (const c of causes) {
        log(`cause ${summarizeCause(c.label, causeFile(c.side)!, c.records)}`);
        log(`cause ${c.label}: ms over the window: ${c.procs}`);
      }
    }
    let profile: string | undefined;
    if (o.profile) {
      await stop(children.shift()!);
      const dir = mkdtempSync(path.join(tmpdir(), 'query-prof-'));
      const profiled = startQueryApi(env, qPort, dir);
      try {
        await waitReady(qPort);
        await load(ours, people, 3);
        const r = await load(ours, people, o.seconds);
        log(`profiled round: ${Math.round(r.reqPerSec)} req/s`);
      } finally {
        await stop(profiled);
      }
      const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
      profile = file
        ? `${summarizeProfile(path.join(dir, file))}\n(profile: ${path.join(dir, file)})`
        : 'no profile written';
    }
    const pick = (side: 'ours' | 'noop' | 'base'): Summary => {
      const of = rounds.map((r) => r[side]).filter((s): s is Side => s !== undefined);
      const cpuOf = of.every((s) => s.nodeUs !== undefined)
        ? { nodeUs: median(of.map((s) => s.nodeUs!)), pgUs: median(of.map((s) => s.pgUs!)) }
        : {};
      return {
        p50: median(of.map((s) => s.p50)),
        p99: median(of.map((s) => s.p99)),
        max: median(of.map((s) => s.max)),
        evenP50: median(of.map((s) => s.evenP50)),
        evenP99: median(of.map((s) => s.evenP99)),
        ilP50: median(of.map((s) => s.ilP50 ?? NaN)),
        ilP99: median(of.map((s) => s.ilP99 ?? NaN)),
        ...cpuOf,
      };
    };
    return {
      rounds,
      ours: pick('ours'),
      noop: pick('noop'),
      ...(baseApi && {
        base: pick('base'),
        baseMaxRatio: median(rounds.map((r) => r.ours.max / r.base!.max)),
      }),
      p99Ratio: median(rounds.map((r) => r.ours.p99 / Math.max(r.noop.p99, 1))),
      pacedP99Ratio: median(rounds.map((r) => r.ours.evenP99 / r.noop.evenP99)),
      interleavedP99Ratio: median(rounds.map((r) => r.ours.ilP99 / r.noop.ilP99)),
      maxRatio: median(rounds.map((r) => r.ours.max / r.noop.max)),
      ...(profile !== undefined && { profile }),
    };
  } finally {
    await Promise.all(children.map(stop));
    await closePool(pool);
    await removeRunData(config);
  }
}

/**
 * `EXPLAIN (ANALYZE, BUFFERS)` of the facts statement the way the query API runs it: prepared, so
 * after a few executions Postgres keeps its generic plan (forced here), for 1 id and for 8 ids
 * of the seeded people, each the third execution (catalog and pages warm).
 */
async function explainFacts(env: NodeJS.ProcessEnv, people: string[]): Promise<string> {
  const config = loadConfig(env);
  const pool = createPool(config.DATABASE_URL, config.PG_SCHEMA, 'bench-reads-explain', 1);
  const out: string[] = [];
  try {
    const client = await pool.connect();
    try {
      await client.query('SET plan_cache_mode = force_generic_plan');
      await client.query(`PREPARE facts(text[]) AS ${FACTS_SQL}`);
      for (const n of [1, 8]) {
        const ids = `ARRAY[${people
          .slice(100, 100 + n)
          .map((p) => `'${p.replace(/'/g, "''")}'`)
          .join(',')}]`;
        let plan: string[] = [];
        for (let i = 0; i < 3; i++)
          plan = (
            await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS) EXECUTE facts(${ids})`)
          ).rows.map((r) => r['QUERY PLAN']);
        out.push(`EXPLAIN (ANALYZE, BUFFERS) of the facts statement, generic plan, ${n} id(s):`, ...plan);
      }
    } finally {
      client.release();
    }
  } finally {
    await closePool(pool);
  }
  return out.join('\n');
}

/** The Redis server's process id (BENCH_READ_CAUSE: its run-queue wait per window). */
async function redisServerPid(env: NodeJS.ProcessEnv): Promise<number> {
  const redis = createRedis(loadConfig(env), 'bench-reads-cause');
  try {
    return Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1] ?? 0);
  } finally {
    await closeRedis(redis);
  }
}

/** The machine's cumulative CPU pressure (ms some task waited for a core), 0 where the kernel has none. */
function cpuPressureMs(): number {
  try {
    return Number(/^some .*total=(\d+)/m.exec(readFileSync('/proc/pressure/cpu', 'utf8'))?.[1] ?? 0) / 1000;
  } catch {
    return 0;
  }
}

/** Drops the run's schema and removes its Redis keys. */
export async function removeRunData(config: ReturnType<typeof loadConfig>): Promise<void> {
  const pool = createPool(config.DATABASE_URL, 'public', 'bench-cleanup', 1);
  await pool.query(`DROP SCHEMA IF EXISTS ${config.PG_SCHEMA} CASCADE`);
  await closePool(pool);
  const redis = createRedis(config, 'bench-cleanup');
  await clearPrefix(redis, config.REDIS_PREFIX);
  await closeRedis(redis);
}

if (require.main === module)
  runReadBench({ ...readOptionsFromEnv(), profile: process.argv.includes('--profile') }).then(
    (f) => {
      console.log(
        `\nmedians: ours p50 ${f.ours.p50} ms p99 ${f.ours.p99} ms, max ${Math.round(f.ours.max)} req/s; no-op p50 ${f.noop.p50} ms p99 ${f.noop.p99} ms, max ${Math.round(f.noop.max)} req/s; p99 ratio ${f.p99Ratio.toFixed(2)}; evenly paced ours p50 ${f.ours.evenP50} ms p99 ${f.ours.evenP99} ms, no-op p50 ${f.noop.evenP50} ms p99 ${f.noop.evenP99} ms, p99 ratio ${f.pacedP99Ratio.toFixed(2)}; interleaved ours p50 ${f.ours.ilP50} ms p99 ${f.ours.ilP99} ms, no-op p50 ${f.noop.ilP50} ms p99 ${f.noop.ilP99} ms, p99 ratio ${f.interleavedP99Ratio.toFixed(2)}; max ratio ${f.maxRatio.toFixed(3)}` +
          (f.ours.nodeUs === undefined
            ? ''
            : `; CPU per read node ${Math.round(f.ours.nodeUs)} µs, pg ${Math.round(f.ours.pgUs!)} µs`) +
          (f.base
            ? `\nbase: p50 ${f.base.p50} ms p99 ${f.base.p99} ms, paced p99 ${f.base.evenP99} ms, interleaved p99 ${f.base.ilP99} ms, max ${Math.round(f.base.max)} req/s, CPU per read node ${Math.round(f.base.nodeUs!)} µs, pg ${Math.round(f.base.pgUs!)} µs; ours ÷ base max (median of rounds) ${f.baseMaxRatio!.toFixed(3)}`
            : ''),
      );
      if (f.profile) console.log(f.profile);
      process.exit(0);
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
