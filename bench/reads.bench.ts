/**
 * `pnpm bench:reads` — docs/operations.md §7 "Reads": `GET /v1/profiles/{id}` from the query API
 * running as its own process (services/query-api/src/main.ts, as deployed), beside a no-op Fastify
 * route in a process of its own (bench/noop-server.ts), alternately in each round:
 *   - p50/p99 at a fixed 1 000 requests/s (autocannon's overall rate), and
 *   - the most requests/s the process answers (16 connections, no rate).
 * The profiles are real: a seeded stream applied by the segmenter's and the scorer's stores into a
 * schema and Redis prefix of the run's own, removed at the end. Printed, never asserted.
 *
 * Options (env): BENCH_ROUNDS (3), BENCH_READ_SECONDS (8), BENCH_READ_PEOPLE (2000),
 * BENCH_PORT (first of two free ports; default 24210), BENCH_PREFIX (names of what the run creates; bench).
 * With `--profile`, the query API of one extra max-rate round runs under `node --cpu-prof`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import type { ProfileEvent, TopicMessage } from '@pstream/events';
import { normalizeEvent } from '@pstream/ingest/dialects';
import { createInterestStore } from '@pstream/interest-store';
import { DEFAULT_RULES } from '@pstream/lifecycle';
import { closePool, closeRedis, createLogger, createPool, createRedis } from '@pstream/platform';
import { createConverter, createSegmentStore, migrate } from '@pstream/profile-store';
import { loadConfig, storeOptions } from '@pstream/scorer/config';
import { prepareEvent } from '@pstream/scorer/score';
import { generateStream } from '@pstream/testkit/streams';
import { stop, summarizeProfile, waitReady } from './ingest.bench';
import { clearPrefix, median } from './redis-bench';

const ROOT = path.resolve(__dirname, '..');
const DAY = 86_400_000;
const TOKEN = 'bench-read-token';

export type ReadFigures = {
  /** Per round, in order: ours and the no-op route at 1 000 req/s (p50, p99 ms) and at full speed (req/s). */
  rounds: { ours: Paced & { max: number }; noop: Paced & { max: number } }[];
  ours: { p50: number; p99: number; max: number };
  noop: { p50: number; p99: number; max: number };
  /** Median of the per-round ratios ours ÷ no-op (p99) and ours ÷ no-op (max req/s). */
  p99Ratio: number;
  maxRatio: number;
  profile?: string;
};
type Paced = { p50: number; p99: number; non2xx: number };

export type ReadOptions = {
  rounds: number;
  seconds: number;
  people: number;
  port: number;
  prefix: string;
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

function startQueryApi(env: NodeJS.ProcessEnv, port: number, cpuProfDir?: string): ChildProcess {
  const args = [
    '--import',
    'tsx',
    ...(cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : []),
    path.join(ROOT, 'services/query-api/src/main.ts'),
  ];
  return spawn(process.execPath, args, {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      ...env,
      QUERY_API_HOST: '127.0.0.1',
      QUERY_API_PORT: String(port),
      API_TOKENS: `${TOKEN}=profiles:read`,
      LAG_GROUPS: `${env.SCORER_GROUP},${env.SEGMENTER_GROUP}`,
      LOG_LEVEL: env.BENCH_LOG_LEVEL ?? 'info',
      LOG_FORMAT: 'json',
    },
  });
}

function startNoop(port: number): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench/noop-server.ts')], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, NOOP_PORT: String(port) },
  });
}

/** One autocannon run over `ids` in turn; `rate` caps the requests/s of all connections together. */
async function load(url: string, ids: string[], seconds: number, rate?: number) {
  let i = 0;
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
  return {
    p50: result.latency.p50,
    p99: result.latency.p99,
    reqPerSec: result.requests.average,
    non2xx: result.non2xx + result.errors + result.timeouts,
  };
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
  const [qPort, nPort] = [o.port, o.port + 1];
  const children: ChildProcess[] = [];
  try {
    const t0 = Date.now();
    const people = await seed(env, o.people);
    log(`reads: ${people.length} profiles seeded in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    children.push(startQueryApi(env, qPort), startNoop(nPort));
    await Promise.all([waitReady(qPort), waitReady(nPort)]);
    const ours = `http://127.0.0.1:${qPort}/v1/profiles/`;
    const noop = `http://127.0.0.1:${nPort}/noop/`;
    await load(ours, people, 3); // warm-up: JIT, pools, prepared statements
    await load(noop, people, 3);
    const rounds: ReadFigures['rounds'] = [];
    for (let round = 1; round <= o.rounds; round++) {
      const op = await load(ours, people, o.seconds, 1000);
      const np = await load(noop, people, o.seconds, 1000);
      const om = await load(ours, people, o.seconds);
      const nm = await load(noop, people, o.seconds);
      rounds.push({
        ours: { ...op, max: om.reqPerSec, non2xx: op.non2xx + om.non2xx },
        noop: { ...np, max: nm.reqPerSec, non2xx: np.non2xx + nm.non2xx },
      });
      log(
        `reads round ${round}: at 1000/s ours p50 ${op.p50} ms p99 ${op.p99} ms, no-op p50 ${np.p50} ms p99 ${np.p99} ms; max ours ${Math.round(om.reqPerSec)} req/s, no-op ${Math.round(nm.reqPerSec)} req/s (non-2xx ours ${op.non2xx + om.non2xx})`,
      );
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
    const pick = (side: 'ours' | 'noop') => ({
      p50: median(rounds.map((r) => r[side].p50)),
      p99: median(rounds.map((r) => r[side].p99)),
      max: median(rounds.map((r) => r[side].max)),
    });
    return {
      rounds,
      ours: pick('ours'),
      noop: pick('noop'),
      p99Ratio: median(rounds.map((r) => r.ours.p99 / Math.max(r.noop.p99, 1))),
      maxRatio: median(rounds.map((r) => r.ours.max / r.noop.max)),
      ...(profile !== undefined && { profile }),
    };
  } finally {
    await Promise.all(children.map(stop));
    await removeRunData(config);
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
        `\nmedians: ours p50 ${f.ours.p50} ms p99 ${f.ours.p99} ms, max ${Math.round(f.ours.max)} req/s; no-op p50 ${f.noop.p50} ms p99 ${f.noop.p99} ms, max ${Math.round(f.noop.max)} req/s; p99 ratio ${f.p99Ratio.toFixed(2)}, max ratio ${f.maxRatio.toFixed(3)}`,
      );
      if (f.profile) console.log(f.profile);
      process.exit(0);
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
