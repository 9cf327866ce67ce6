/**
 * `pnpm bench` — every stage of docs/operations.md §7 against its raw limit in one run, then the
 * whole pipeline sustained; prints one table and appends it, with the machine, load average, date
 * and commit, to BENCHMARKS.md. Each stage is its own bench module (run alone with its own
 * `pnpm bench:…`); this one only calls them in turn and judges their figures against the aims.
 *
 * | stage | ours | raw limit, alternating with ours in the same run |
 * |---|---|---|
 * | ingest | bench/ingest.bench.ts | Kafka's ProducerPerformance |
 * | scorer, store only / end to end | bench/pipeline.bench.ts | redis-benchmark -P 16 ZINCRBY |
 * | segmenter, direct apply | packages/profile-store/bench/apply.ts (pnpm bench:segmenter) | COPY of one narrow row per event |
 * | segmenter's write floor (reported) | packages/profile-store/bench/floor.ts (pnpm bench:segmenter:floor) | the same COPY |
 * | profile read | bench/reads.bench.ts | a no-op Fastify route |
 * | whole pipeline, freshness | bench/sustained.bench.ts | (ingest alone, stage 1) |
 * | whole pipeline, CPU per event of every process | bench/sustained.bench.ts (bench/proc-cpu.ts) | SPEC §7's budget, 200 µs |
 * | sealing (crypto-shredding) | bench/sealing.bench.ts | the same events in clear: JSON work, and the consume loop |
 *
 * The per-process CPU table at the sustained rate is printed (and appended) under the main table.
 *
 * Options (env): BENCH_ROUNDS (3, every stage), BENCH_STAGES (ingest,scorer,segmenter,reads,pipeline,sealing),
 * BENCH_PORT (first of 30 free ports; 24200), BENCH_PREFIX (names of what runs create; bench),
 * BENCH_APPEND (1; 0 leaves BENCHMARKS.md alone), BENCH_SEGMENTER_EVENTS (40000), and each
 * module's own knobs (BENCH_SECONDS, BENCH_PP_RECORDS, BENCH_EVENTS, BENCH_READ_SECONDS,
 * BENCH_PIPELINE_SECONDS, BENCH_PIPELINE_START, BENCH_PIPELINE_STEPS, BENCH_FRESHNESS_SECONDS …).
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { commonEnv } from '@pstream/platform';
import { BEHIND_CHUNK, runSegmenterApply } from '../packages/profile-store/bench/apply';
import { runWriteFloor } from '../packages/profile-store/bench/floor';
import { runIngestBench } from './ingest.bench';
import { runScorerBench } from './pipeline.bench';
import { median } from './redis-bench';
import { readOptionsFromEnv, runReadBench } from './reads.bench';
import { runSealingBench } from './sealing.bench';
import { CPU_BUDGET_US, cpuBudgetTable, runSustainedBench, sustainedOptionsFromEnv } from './sustained.bench';

const ROOT = path.resolve(__dirname, '..');
const STAGES = ['ingest', 'scorer', 'segmenter', 'reads', 'pipeline', 'sealing'] as const;

type Row = { stage: string; ours: string; limit: string; ratio: string; aim: string; met: boolean | undefined };

function options(env: NodeJS.ProcessEnv) {
  const stages = (env.BENCH_STAGES ?? STAGES.join(',')).split(',').map((s) => s.trim());
  const unknown = stages.filter((s) => !(STAGES as readonly string[]).includes(s));
  if (unknown.length > 0)
    throw new Error(`BENCH_STAGES names unknown stages ${unknown.join(', ')}; known: ${STAGES.join(', ')}`);
  const rounds = Number(env.BENCH_ROUNDS ?? 3);
  if (!Number.isInteger(rounds) || rounds < 1)
    throw new Error(`BENCH_ROUNDS must be a whole number ≥ 1, got ${env.BENCH_ROUNDS}`);
  const port = Number(env.BENCH_PORT ?? 24_200);
  if (!Number.isInteger(port) || port < 1 || port > 65_505)
    throw new Error(`BENCH_PORT must be the first of 30 free ports, got ${env.BENCH_PORT}`);
  return {
    stages: new Set(stages),
    rounds,
    port,
    prefix: env.BENCH_PREFIX ?? 'bench',
    append: env.BENCH_APPEND !== '0',
    segmenterEvents: Number(env.BENCH_SEGMENTER_EVENTS ?? 40_000),
  };
}

const n = (x: number) => Math.round(x).toLocaleString('en-US');
const ratioOf = (ours: number[], theirs: number[]) => median(ours.map((o, i) => o / theirs[i]!));

function machine(): string {
  const model =
    /Model name:\s*(.+)/.exec(execFileSync('lscpu', { encoding: 'utf8' }))?.[1]?.trim() ??
    cpus()[0]?.model ??
    'unknown';
  const nproc = execFileSync('nproc', { encoding: 'utf8' }).trim();
  return `${nproc} cores (\`nproc\`), \`lscpu\`: "${model}", node ${process.version}`;
}

async function main(): Promise<void> {
  const o = options(process.env);
  const started = Date.now();
  const loadBefore = loadavg();
  const log = (line: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}`);
  const rows: Row[] = [];
  let ingestRate: number | undefined;
  let cpuTable: string | undefined;
  log(
    `pnpm bench: stages ${[...o.stages].join(', ')}; ${o.rounds} rounds each; load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`,
  );

  if (o.stages.has('ingest')) {
    log('ingest vs ProducerPerformance…');
    const f = await runIngestBench(o.port, log);
    ingestRate = median(f.ours);
    const ratio = ratioOf(f.ours, f.theirs);
    rows.push({
      stage: `ingest, events/s accepted, batches of 100 (INGEST_WORKERS=${f.workers})`,
      ours: n(ingestRate),
      limit: `ProducerPerformance ${n(median(f.theirs))} rec/s (${f.recordSize} B, acks=all)`,
      ratio: `${ratio.toFixed(3)}; by CPU ${f.cpuRatio.toFixed(3)}`,
      aim: '≥ 0.35',
      met: ratio >= 0.35,
    });
  }

  /** The scorer stage's median ZINCRBY ops/s, for the sealing stage's ceiling row. */
  let zincrby: number | undefined;
  if (o.stages.has('scorer')) {
    log('scorer vs redis-benchmark ZINCRBY…');
    const { rows: runs, scaling } = await runScorerBench(o.rounds, false);
    const z = runs.map((r) => r.zincrby);
    zincrby = median(z);
    const store = ratioOf(
      runs.map((r) => r.store),
      z,
    );
    const e2e = ratioOf(
      runs.map((r) => r.e2e),
      z,
    );
    const limit = `redis-benchmark -P 16 ZINCRBY ${n(median(z))} ops/s`;
    rows.push({
      stage: 'scorer, store only, events/s',
      ours: n(median(runs.map((r) => r.store))),
      limit,
      ratio: store.toFixed(3),
      aim: '≥ 0.40',
      met: store >= 0.4,
    });
    rows.push({
      stage: 'scorer, end to end from Kafka, events/s',
      ours: n(median(runs.map((r) => r.e2e))),
      limit,
      ratio: e2e.toFixed(3),
      aim: '≥ 0.30',
      met: e2e >= 0.3,
    });
    if (scaling !== undefined)
      rows.push({
        stage: 'scorer, end to end, two processes ÷ one (same topic and group)',
        ours: `×${scaling.toFixed(2)}`,
        limit: '—',
        ratio: '—',
        aim: '(reported)',
        met: undefined,
      });
  }

  if (o.stages.has('segmenter')) {
    log('segmenter vs COPY of one narrow row per event…');
    const dbUrl = commonEnv.DATABASE_URL.parse(process.env.DATABASE_URL);
    // 500 a transaction (one partition's chunk, the row of every earlier run) and what a segmenter that
    // is behind applies in one transaction (a fetch's partition chunks together); the COPY the same.
    for (const chunk of [500, BEHIND_CHUNK]) {
      const f = await runSegmenterApply({
        databaseUrl: dbUrl,
        rounds: o.rounds,
        events: o.segmenterEvents,
        chunk,
        print: log,
      });
      const cpu = f.cpuRatio === null ? '' : `; by CPU ${f.cpuRatio.toFixed(3)}`;
      rows.push({
        stage: `segmenter, direct apply, events/s (${n(o.segmenterEvents)} per round, ${n(chunk)} a transaction)`,
        ours: n(f.ours),
        limit: `COPY of one narrow row per event ${n(f.copy)} rows/s`,
        ratio: `${f.ratio.toFixed(3)}${cpu}`,
        aim: '≥ 0.25',
        met: f.ratio >= 0.25,
      });
    }
    // What no apply keeping today's data model can go below: each event's two rows alone (floor.ts).
    const floor = await runWriteFloor({
      databaseUrl: dbUrl,
      rounds: o.rounds + 1,
      events: o.segmenterEvents,
      chunk: BEHIND_CHUNK,
      print: log,
    });
    rows.push({
      stage: `segmenter's write floor: each event's dedupe record and activity row COPYed into the real tables, nothing else (${n(BEHIND_CHUNK)} a transaction; without activity's secondary indexes; the activity rows alone)`,
      ours: `${n(floor.floor.rate)} (${n(floor.bare.rate)}; ${n(floor.activity.rate)})`,
      limit: `COPY of one narrow row per event ${n(floor.raw.rate)} rows/s`,
      ratio: `${floor.floorRatio.toFixed(3)} (${floor.bareRatio.toFixed(3)}; ${floor.activityRatio.toFixed(3)})`,
      aim: '(reported)',
      met: undefined,
    });
  }

  if (o.stages.has('reads')) {
    log('profile reads vs a no-op Fastify route…');
    const f = await runReadBench({
      ...readOptionsFromEnv(),
      rounds: o.rounds,
      port: o.port + 10,
      prefix: o.prefix,
      log,
    });
    rows.push({
      stage: 'profile read, p99 at 1 000 req/s (p50)',
      ours: `${f.ours.p99} ms (${f.ours.p50} ms)`,
      limit: `no-op route ${f.noop.p99} ms (${f.noop.p50} ms)`,
      ratio: `×${f.p99Ratio.toFixed(2)}`,
      aim: '≤ ×2',
      met: f.p99Ratio <= 2,
    });
    rows.push({
      stage: 'profile read, p99 at 1 000 req/s evenly paced (p50)',
      ours: `${f.ours.evenP99} ms (${f.ours.evenP50} ms)`,
      limit: `no-op route ${f.noop.evenP99} ms (${f.noop.evenP50} ms)`,
      ratio: `×${f.pacedP99Ratio.toFixed(2)}`,
      aim: '≤ ×2',
      met: f.pacedP99Ratio <= 2,
    });
    rows.push({
      stage: 'profile read, p99 at 1 000 req/s evenly paced, interleaved with the no-op (p50)',
      ours: `${f.ours.ilP99} ms (${f.ours.ilP50} ms)`,
      limit: `no-op route ${f.noop.ilP99} ms (${f.noop.ilP50} ms)`,
      ratio: `×${f.interleavedP99Ratio.toFixed(2)}`,
      aim: '≤ ×2',
      met: f.interleavedP99Ratio <= 2,
    });
    rows.push({
      stage: 'profile read, max req/s',
      ours: n(f.ours.max),
      limit: `no-op route ${n(f.noop.max)} req/s`,
      ratio: f.maxRatio.toFixed(3),
      aim: '≥ 5 000 req/s',
      met: f.ours.max >= 5000,
    });
  }

  if (o.stages.has('pipeline')) {
    log('whole pipeline: the four services, demo traffic at fixed rates…');
    const f = await runSustainedBench({ ...sustainedOptionsFromEnv(), port: o.port + 20, prefix: o.prefix, log });
    const tried = f.tried.map((t) => `${n(t.rate)}${t.holds ? '✓' : '✗'}`).join(' ');
    rows.push({
      stage: `whole pipeline sustained, events/s (tried ${tried})`,
      ours: n(f.sustained),
      limit: ingestRate === undefined ? '—' : `ingest alone ${n(ingestRate)}`,
      ratio: ingestRate === undefined ? '—' : (f.sustained / ingestRate).toFixed(3),
      aim: '≥ 10 000',
      met: f.sustained >= 10_000,
    });
    if (f.budget) {
      const { cpu, held, rate } = f.budget;
      const where = held ? 'at the sustained rate' : `at ${n(rate)} events/s, which did not hold`;
      rows.push({
        stage: `whole pipeline CPU per event ${where}, all processes (table below; per event each consumer got through)`,
        ours: `${cpu.totalUs.toFixed(0)} µs (${cpu.perProcessedUs.toFixed(0)} µs)`,
        limit: `budget ${CPU_BUDGET_US} µs (10 000 events/s on 2 cores)`,
        ratio: `×${(cpu.perProcessedUs / CPU_BUDGET_US).toFixed(2)}`,
        aim: `≤ ${CPU_BUDGET_US} µs`,
        met: cpu.perProcessedUs <= CPU_BUDGET_US,
      });
      cpuTable = cpuBudgetTable(cpu, f.budget.title);
    }
    for (const x of f.freshness)
      rows.push({
        stage: `freshness p99 (p50), POST 202 → both stores via the query API, at ${n(x.achieved)} events/s`,
        ours: `${n(x.p99)} ms (${n(x.p50)} ms); each store alone p99: Redis ${n(x.redis.p99)} ms, Postgres ${n(x.postgres.p99)} ms`,
        limit: '—',
        ratio: '—',
        aim: '< 250 ms',
        met: x.p99 < 250,
      });
  }

  if (o.stages.has('sealing')) {
    log('sealing: seal/open per event beside the JSON work, and the consume loop sealed vs clear…');
    const f = await runSealingBench({
      databaseUrl: commonEnv.DATABASE_URL.parse(process.env.DATABASE_URL),
      brokers: commonEnv.KAFKA_BROKERS.parse(process.env.KAFKA_BROKERS),
      rounds: o.rounds,
      events: Number(process.env.BENCH_SEALING_EVENTS ?? 20_000),
      prefix: o.prefix,
      log,
    });
    const us = (x: number) => `${x.toFixed(1)} µs`;
    rows.push({
      stage: 'ingest: seal per event, person cached (500 new people per batch)',
      ours: `${us(f.sealHot)} (${us(f.sealNew)})`,
      limit: `JSON.stringify ${us(f.stringify)}`,
      ratio: `×${(f.sealHot / f.stringify).toFixed(1)}`,
      aim: '(reported)',
      met: undefined,
    });
    rows.push({
      stage: 'consumers: open per event, person cached (uncached, one SELECT per batch)',
      ours: `${us(f.openHot)} (${us(f.openCold)})`,
      limit: `JSON.parse ${us(f.parse)}`,
      ratio: `×${(f.openHot / f.parse).toFixed(1)}`,
      aim: '(reported)',
      met: undefined,
    });
    const loop = f.consumeSealed / f.consumeClear;
    rows.push({
      stage: 'consume loop, sealed topic, events/s (no-op apply; 5 000 people, keys read as a replay would)',
      ours: n(f.consumeSealed),
      limit: `same events in clear ${n(f.consumeClear)}`,
      ratio: loop.toFixed(3),
      aim: '(reported)',
      met: undefined,
    });
    // What the scorer's end to end can reach at most: the loop alone, with nothing applied, against the same
    // run's ZINCRBY (the scorer's end-to-end row divides by it too).
    if (zincrby !== undefined) {
      const of = (rate: number) => (rate / zincrby!).toFixed(3);
      rows.push({
        stage:
          "consume loop with a no-op apply ÷ the scorer rows' ZINCRBY: the ceiling of the scorer end to end, sealed with keys cached (keys read as a replay would; in clear)",
        ours: `${n(f.consumeSealedHot)} (${n(f.consumeSealed)}; ${n(f.consumeClear)})`,
        limit: `redis-benchmark -P 16 ZINCRBY ${n(zincrby)} ops/s`,
        ratio: `${of(f.consumeSealedHot)} (${of(f.consumeSealed)}; ${of(f.consumeClear)})`,
        aim: '(reported)',
        met: undefined,
      });
    }
    rows.push({
      stage:
        'consume loop, µs of CPU per event (kafkajs fetch and decode, open, JSON.parse, validation), sealed with keys cached (keys read as a replay would)',
      ours: `sealed ${us(f.consumeSealedHotCpu)} (${us(f.consumeSealedCpu)})`,
      limit: `clear ${us(f.consumeClearCpu)}`,
      ratio: `×${(f.consumeSealedHotCpu / f.consumeClearCpu).toFixed(2)} (×${(f.consumeSealedCpu / f.consumeClearCpu).toFixed(2)})`,
      aim: '(reported)',
      met: undefined,
    });
  }

  const loadAfter = loadavg();
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  const dirty =
    execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' }).trim() !==
    '';
  const table = [
    '| stage | ours | raw limit, same run | ratio | aim | met? |',
    '|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.stage} | ${r.ours} | ${r.limit} | ${r.ratio} | ${r.aim} | ${r.met === undefined ? '—' : r.met ? 'yes' : 'no'} |`,
    ),
    ...(cpuTable === undefined ? [] : ['', cpuTable]),
  ].join('\n');
  const minutes = ((Date.now() - started) / 60_000).toFixed(1);
  const header =
    `### \`pnpm bench\`, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, commit ${commit}${dirty ? ' (with uncommitted changes)' : ''}\n\n` +
    `${machine()}; load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')} before, ${loadAfter.map((l) => l.toFixed(2)).join(' ')} after; ` +
    `${o.rounds} rounds per stage, medians (ratios: median of per-round ratios); ${minutes} min.\n`;
  console.log(`\n${header}\n${table}\n`);
  if (o.append) {
    const file = path.join(ROOT, 'BENCHMARKS.md');
    const anchor = '## `pnpm bench` runs';
    const intro = readFileSync(file, 'utf8').includes(anchor)
      ? ''
      : `\n${anchor}\n\nEvery run of \`pnpm bench\` appends its table here (bench/all.bench.ts).\n`;
    appendFileSync(file, `${intro}\n${header}\n${table}\n`);
    console.log('appended to BENCHMARKS.md');
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
