/**
 * `pnpm bench:ingest` — docs/operations.md §7 "Ingest": events/s accepted through POST /v1/events in batches of
 * 100, beside Kafka's own ProducerPerformance at the same record size and acks=all, on the same
 * Kafka, in one run; several alternating rounds, medians and their ratio. With `--profile`, one
 * extra ingest round runs under `node --cpu-prof` and the hottest functions and packages are printed.
 *
 * Ingest runs as its own process (services/ingest/src/main.ts, as deployed), autocannon in this
 * one. Topics are created for the run and deleted afterwards. Prints figures; it asserts nothing.
 * With several INGEST_WORKERS settings (BENCH_INGEST_WORKERS, by default 1 and one per core), one
 * ingest per setting runs side by side on ports `port`, `port + 1`, …, and every round measures
 * each in turn before ProducerPerformance's round; the figures returned (and judged by `pnpm bench`)
 * are the last setting's, one worker per core unless told otherwise: ingest on a machine of its own.
 *
 * Beside the rates, the CPU each side spends per record (bench/proc-cpu.ts): ingest's process and
 * the broker's JVM during our rounds; ProducerPerformance's JVM and the broker during theirs. On a
 * shared machine these are far steadier than the rates, and they show where ours costs more.
 *
 * Options (env): BENCH_ROUNDS (3), BENCH_SECONDS (10), BENCH_CONNECTIONS (16), BENCH_PP_RECORDS (600000),
 * BENCH_PORT (ingest's port, the first of as many as worker settings; a random one by default),
 * BENCH_PREFIX (of the topics' names; bench), BENCH_INGEST_WORKERS (comma-separated INGEST_WORKERS
 * settings; `1,<cores>`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { normalizeEvent } from '@pstream/ingest/dialects';
import { closePool, commonEnv, createPool } from '@pstream/platform';
import autocannon from 'autocannon';
import { Kafka, logLevel } from 'kafkajs';
import { cpuSeconds, listeningPid, reapedChildrenCpuSeconds, treeCpuSeconds } from './proc-cpu';

const ROOT = path.resolve(__dirname, '..');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const PP_RECORDS = Number(process.env.BENCH_PP_RECORDS ?? 600_000);
const BATCH = 100;
const PARTITIONS = 12;
/** INGEST_WORKERS settings measured side by side, the one judged last. */
const WORKERS = [...new Set((process.env.BENCH_INGEST_WORKERS ?? `1,${cpus().length}`).split(',').map(Number))];
if (WORKERS.some((w) => !Number.isInteger(w) || w < 1))
  throw new Error(`BENCH_INGEST_WORKERS must list whole numbers ≥ 1, got ${process.env.BENCH_INGEST_WORKERS}`);
const brokers = process.env.KAFKA_BROKERS ?? '127.0.0.1:9092';
const profile = process.argv.includes('--profile');
const id = randomBytes(4).toString('hex');
const prefix = process.env.BENCH_PREFIX ?? 'bench';
const topics = { ingest: `${prefix}.${id}.events`, pp: `${prefix}.${id}.pp` };
/** Ingest seals every event with person keys kept in Postgres (docs/privacy.md): a schema of the bench's own. */
const schema = `${prefix}_${id}_ingest`.toLowerCase().replace(/[^a-z0-9_]/g, '_');

/** 100 realistic events: 100 people clicking, dwelling and buying, with tags and a channel. */
function batchBody(): string {
  const types = ['click', 'dwell', 'like', 'follow', 'purchase'] as const;
  const events = Array.from({ length: BATCH }, (_, i) => {
    const type = types[i % types.length]!;
    return {
      type,
      userId: `u-${String(i).padStart(6, '0')}`,
      target: { type: 'product', id: `p-${1000 + i}` },
      tags: ['category:dress', `brand:b${i % 17}`, 'style:casual'],
      context: { channel: 'homepage' },
      ...(type === 'dwell' && { dwellMs: 42_000 }),
      ...(type === 'purchase' && { amount: 199, currency: 'CNY', quantity: 1 }),
    };
  });
  return JSON.stringify({ events });
}

/** Mean size of the normalized messages our events become: ProducerPerformance's --record-size. */
function recordSize(body: string): number {
  const { events } = JSON.parse(body) as { events: unknown[] };
  const sizes = events.map((e) => {
    const r = normalizeEvent(e, { source: 'bench', now: Date.now() });
    if (!r.ok) throw new Error(`bench event invalid: ${JSON.stringify(r.errors)}`);
    return Buffer.byteLength(JSON.stringify(r.value));
  });
  return Math.round(sizes.reduce((a, b) => a + b, 0) / sizes.length);
}

function startIngest(port: number, workers: number, cpuProfDir?: string): ChildProcess {
  const args = [
    '--import',
    'tsx',
    ...(cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : []),
    path.join(ROOT, 'services/ingest/src/main.ts'),
  ];
  return spawn(process.execPath, args, {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      ...process.env,
      KAFKA_BROKERS: brokers,
      EVENTS_TOPIC: topics.ingest,
      INGEST_HOST: '127.0.0.1',
      INGEST_PORT: String(port),
      INGEST_WORKERS: String(workers),
      PG_SCHEMA: schema,
      WRITE_KEYS: 'bench-key=bench',
      RATE_LIMIT_PER_SEC: '1000000',
      RATE_LIMIT_BURST: '1000000',
      LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info',
      LOG_FORMAT: 'json',
    },
  });
}

export async function waitReady(port: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`the service on port ${port} did not become ready within 60 s`);
}

export async function stop(child: ChildProcess): Promise<void> {
  // ended already: by itself (exitCode) or by a signal (signalCode; exitCode stays null and 'exit' has fired)
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/** One autocannon round: accepted events per second, counting only 202s. */
async function ingestRound(
  port: number,
  body: string,
): Promise<{ eventsPerSec: number; p99Ms: number; non2xx: number }> {
  const result = await autocannon({
    url: `http://127.0.0.1:${port}/v1/events`,
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-write-key': 'bench-key' },
    body,
    connections: CONNECTIONS,
    duration: SECONDS,
  });
  const accepted = result['2xx'];
  return {
    eventsPerSec: (accepted * BATCH) / SECONDS,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx + result.errors + result.timeouts,
  };
}

/** One ProducerPerformance round: records/s with acks=all at our record size. */
async function producerPerformance(size: number): Promise<number> {
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(
      'bash',
      [
        path.join(ROOT, 'infra/kafka/broker.sh'),
        'run',
        'org.apache.kafka.tools.ProducerPerformance',
        '--topic',
        topics.pp,
        '--num-records',
        String(PP_RECORDS),
        '--record-size',
        String(size),
        '--throughput',
        '-1',
        '--producer-props',
        `bootstrap.servers=${brokers}`,
        'acks=all',
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`ProducerPerformance exited ${code}`))));
  });
  const last = out.trim().split('\n').pop() ?? '';
  const m = /records sent, ([\d.]+) records\/sec/.exec(last);
  if (!m) throw new Error(`cannot read ProducerPerformance output: ${last}`);
  return Number(m[1]);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/** Self time per function and per package from a .cpuprofile. */
export function summarizeProfile(file: string): string {
  type Node = { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number };
  const prof = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[] };
  const total = prof.samples.length;
  const byFn = new Map<string, number>();
  const byPkg = new Map<string, number>();
  for (const n of prof.nodes) {
    const hits = n.hitCount ?? 0;
    if (hits === 0) continue;
    const url = n.callFrame.url;
    const pkg =
      /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1] ??
      (url.includes('/packages/') || url.includes('/services/')
        ? 'pstream (our code)'
        : url.startsWith('node:')
          ? 'node core'
          : url === ''
            ? `(${n.callFrame.functionName || 'native'})`
            : 'other');
    const fn = `${n.callFrame.functionName || '(anonymous)'} ${url ? `${url.replace(/^.*node_modules\//, '').replace(ROOT + '/', '')}:${n.callFrame.lineNumber + 1}` : ''}`;
    byFn.set(fn, (byFn.get(fn) ?? 0) + hits);
    byPkg.set(pkg, (byPkg.get(pkg) ?? 0) + hits);
  }
  const top = (m: Map<string, number>, k: number) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, k)
      .map(([name, hits]) => `| ${((100 * hits) / total).toFixed(1)}% | ${name.replace(/\|/g, '\\|')} |`)
      .join('\n');
  return `by package (self time):\n| share | package |\n|---|---|\n${top(byPkg, 12)}\n\nby function (self time):\n| share | function |\n|---|---|\n${top(byFn, 20)}`;
}

/** µs of CPU per record of one round: the producing process (ingest, or ProducerPerformance's JVM) and the broker. */
export type RoundCpu = { producerUs: number; brokerUs: number };
export type IngestFigures = {
  ours: number[];
  theirs: number[];
  recordSize: number;
  oursCpu: RoundCpu[];
  theirsCpu: RoundCpu[];
  /**
   * Median over rounds of ProducerPerformance's CPU per record (its JVM + the broker) ÷ ours per
   * event (ingest + the broker): the rate ratio with each side's use of the cores taken out —
   * ProducerPerformance's JVM spreads over every core, ingest over its workers.
   */
  cpuRatio: number;
  /** The INGEST_WORKERS setting these figures are of (the last of BENCH_INGEST_WORKERS). */
  workers: number;
};

/** Per round, their CPU per record ÷ ours per event (producer + broker each), the median. */
export function cpuRatioOf(ours: RoundCpu[], theirs: RoundCpu[]): number {
  return median(ours.map((o, i) => (theirs[i]!.producerUs + theirs[i]!.brokerUs) / (o.producerUs + o.brokerUs)));
}

/** CPU seconds of the broker listening on the first of KAFKA_BROKERS (0 when it cannot be read). */
function brokerCpu(): number {
  const pid = listeningPid(Number(/:(\d+)$/.exec(brokers.split(',')[0]!)?.[1] ?? 9092));
  return pid === undefined ? 0 : (cpuSeconds(pid) ?? 0);
}

/** Runs `round`, measuring the producer's CPU with `producerCpu` and the broker's, per record it reports. */
async function meteredRound<T>(
  round: () => Promise<T>,
  records: (r: T) => number,
  producerCpu: () => number,
): Promise<T & { cpu: RoundCpu }> {
  const [p0, b0] = [producerCpu(), brokerCpu()];
  const r = await round();
  const n = Math.max(1, records(r));
  return { ...r, cpu: { producerUs: ((producerCpu() - p0) * 1e6) / n, brokerUs: ((brokerCpu() - b0) * 1e6) / n } };
}

/**
 * The ingest benchmark on `port` (and the next ports, one per INGEST_WORKERS setting): a warm-up
 * round each, then ROUNDS alternating rounds of ours (every setting) and ProducerPerformance on
 * topics of its own (deleted at the end); progress and the table go to `log`.
 */
export async function runIngestBench(
  port: number,
  log: (line: string) => void = console.log,
  withProfile = false,
): Promise<IngestFigures> {
  const kafka = new Kafka({ clientId: 'bench', brokers: brokers.split(','), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    waitForLeaders: true,
    topics: Object.values(topics).map((topic) => ({ topic, numPartitions: PARTITIONS })),
  });
  execFileSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts/migrate.ts')], {
    cwd: ROOT,
    env: { ...process.env, PG_SCHEMA: schema },
    stdio: 'ignore',
  });
  const body = batchBody();
  const size = recordSize(body);
  log(
    `machine: ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${cpus()[0]?.model}; node ${process.version}`,
  );
  log(
    `ingest: ${BATCH} events/request (${(Buffer.byteLength(body) / 1024).toFixed(1)} KB), ${CONNECTIONS} connections, ${SECONDS} s per round; record size ${size} B; ${PARTITIONS} partitions; acks=all`,
  );

  /** Per INGEST_WORKERS setting, in WORKERS' order: its rates and CPU per round. */
  const byWorkers = WORKERS.map((workers) => ({ workers, ours: [] as number[], oursCpu: [] as RoundCpu[] }));
  const theirs: number[] = [];
  const theirsCpu: RoundCpu[] = [];
  try {
    const ingests = WORKERS.map((workers, i) => ({ workers, port: port + i, child: startIngest(port + i, workers) }));
    try {
      for (const { port: p } of ingests) {
        await waitReady(p);
        await ingestRound(p, body).then(() => undefined); // warm-up (JIT, connections, metadata)
      }
      for (let round = 1; round <= ROUNDS; round++) {
        const lines: string[] = [];
        // Settings take turns going first, so none always follows ProducerPerformance's round.
        const order = ingests.map((_, i) => i);
        if (round % 2 === 0) order.reverse();
        for (const i of order) {
          const ingest = ingests[i]!;
          const r = await meteredRound(
            () => ingestRound(ingest.port, body),
            (x) => x.eventsPerSec * SECONDS,
            // The primary and its workers (src/workers.ts) together.
            () => treeCpuSeconds(ingest.child.pid!) ?? 0,
          );
          byWorkers[i]!.ours.push(r.eventsPerSec);
          byWorkers[i]!.oursCpu.push(r.cpu);
          lines.push(
            `ingest ×${ingest.workers} ${r.eventsPerSec.toFixed(0)} events/s (p99 ${r.p99Ms} ms, ${r.non2xx} non-2xx/errors; CPU per event: ingest ${r.cpu.producerUs.toFixed(1)} µs, broker ${r.cpu.brokerUs.toFixed(1)} µs)`,
          );
        }
        // ProducerPerformance runs as a child (a launcher script and its JVM): its CPU is ours once reaped.
        const pp = await meteredRound(
          async () => ({ rate: await producerPerformance(size) }),
          () => PP_RECORDS,
          reapedChildrenCpuSeconds,
        );
        theirs.push(pp.rate);
        theirsCpu.push(pp.cpu);
        const ratios = byWorkers.map((w) => `×${w.workers} ${((100 * w.ours[round - 1]!) / pp.rate).toFixed(1)}%`);
        log(
          `round ${round}: ${lines.join('; ')}; ` +
            `ProducerPerformance ${pp.rate.toFixed(0)} records/s (CPU per record: its JVM ${pp.cpu.producerUs.toFixed(1)} µs, broker ${pp.cpu.brokerUs.toFixed(1)} µs); ratio ${ratios.join(', ')}`,
        );
      }
    } finally {
      await Promise.all(ingests.map(({ child }) => stop(child)));
    }

    const mt = median(theirs);
    const row = (what: string, xs: number[], digits = 0) =>
      log(`| ${what} | ${median(xs).toFixed(digits)} | ${xs.map((x) => x.toFixed(digits)).join(', ')} |`);
    log('\n| measure | median of ' + ROUNDS + ' | rounds |\n|---|---|---|');
    row(`ProducerPerformance, records/s, ${size} B, acks=all`, theirs);
    row(
      'ProducerPerformance JVM, µs CPU per record',
      theirsCpu.map((c) => c.producerUs),
      1,
    );
    row(
      'broker, µs CPU per record (ProducerPerformance rounds)',
      theirsCpu.map((c) => c.brokerUs),
      1,
    );
    for (const w of byWorkers) {
      const at = `INGEST_WORKERS=${w.workers}`;
      row(`ingest (${at}), events/s accepted (202) through /v1/events, batches of ${BATCH}`, w.ours);
      const ratios = w.ours.map((o, i) => (100 * o) / theirs[i]!);
      log(`| ${at}: ratio of the medians | ${((100 * median(w.ours)) / mt).toFixed(1)}% | |`);
      log(
        `| ${at}: median of the per-round ratios | ${median(ratios).toFixed(1)}% | ${ratios.map((r) => `${r.toFixed(1)}%`).join(', ')} |`,
      );
      row(
        `${at}: ingest processes, µs CPU per event`,
        w.oursCpu.map((c) => c.producerUs),
        1,
      );
      row(
        `${at}: broker, µs CPU per event (ingest rounds)`,
        w.oursCpu.map((c) => c.brokerUs),
        1,
      );
      log(
        `| ${at}: ratio by CPU: ProducerPerformance's µs per record ÷ ours per event (producer + broker each), median of rounds | ${cpuRatioOf(w.oursCpu, theirsCpu).toFixed(3)} | |`,
      );
    }
    if (byWorkers.length > 1) {
      const [first, last] = [byWorkers[0]!, byWorkers.at(-1)!];
      const perRound = last.ours.map((o, i) => o / first.ours[i]!);
      log(
        `| ×${last.workers} workers ÷ ×${first.workers}, events/s, median of per-round ratios | ${median(perRound).toFixed(2)} | ${perRound.map((r) => r.toFixed(2)).join(', ')} |`,
      );
    }

    if (withProfile) {
      const dir = mkdtempSync(path.join(tmpdir(), 'ingest-prof-'));
      // One process: a profile per worker would be one file each, and one of them would be the idle primary's.
      const profiled = startIngest(port, 1, dir);
      try {
        await waitReady(port);
        await ingestRound(port, body);
        const r = await ingestRound(port, body);
        log(`\nprofiled round: ${r.eventsPerSec.toFixed(0)} events/s`);
      } finally {
        await stop(profiled);
      }
      const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
      log(
        file ? `${summarizeProfile(path.join(dir, file))}\n(profile: ${path.join(dir, file)})` : 'no profile written',
      );
    }
    const judged = byWorkers.at(-1)!;
    return {
      ours: judged.ours,
      theirs,
      recordSize: size,
      oursCpu: judged.oursCpu,
      theirsCpu,
      cpuRatio: cpuRatioOf(judged.oursCpu, theirsCpu),
      workers: judged.workers,
    };
  } finally {
    await admin.deleteTopics({ topics: Object.values(topics) }).catch(() => undefined);
    await admin.disconnect();
    const pool = createPool(commonEnv.DATABASE_URL.parse(process.env.DATABASE_URL), schema, 'bench-ingest', 1);
    await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await closePool(pool);
  }
}

if (require.main === module)
  runIngestBench(
    Number(process.env.BENCH_PORT ?? 20_000 + Math.floor(Math.random() * 10_000)),
    console.log,
    profile,
  ).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
