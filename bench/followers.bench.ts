/**
 * `pnpm bench:followers`: figures for BENCHMARKS.md, printed, never asserted.
 *
 * A shop with BENCH_FOLLOWERS (default 1 000 000) followers and a rival with a fifth of that, half
 * of whom also follow the shop, with traits, stages and 30 days of follow history, generated with
 * set-based INSERTs (the migration-006 triggers fire per statement, so the aggregates are built as
 * the segmenter would build them). Then, through the real query API (`inject`, no network):
 * p50/p99 of `GET /v1/targets/shop/big/followers` and of the overlap with the rival, beside what a
 * scan of the followers at request time costs (`count(*)` and an exact intersection), measured in
 * the same run. Everything lives in a schema and a Redis prefix of its own, removed at the end —
 * unless `BENCH_GENERATE_ONLY=1` (seed, keep, stop: seeding needs no bench lock) or
 * `BENCH_REUSE=<id>` (measure what such a run left, and keep it unless BENCH_KEEP=0). The interests of the
 * followers the route samples are written through the scorer's store on the first measuring run (kept with the
 * data). Each route's steps (statements, Redis pipelines, GC pauses) are printed, p50/p99 and the three slowest
 * requests step by step.
 */
import { randomBytes } from 'node:crypto';
import { performance, PerformanceObserver } from 'node:perf_hooks';
import {
  closePool,
  commonEnv,
  createLogger,
  createMetrics,
  createPool,
  createRedis,
  parseEnv,
} from '@pstream/platform';
import { createInterestStore } from '@pstream/interest-store';
import { migrate } from '@pstream/profile-store';
import { buildApp } from '@pstream/query-api/app';
import { loadConfig } from '@pstream/query-api/config';
import { loadConfig as loadScorerConfig, storeOptions } from '@pstream/scorer/config';
import { prepareEvent } from '@pstream/scorer/score';
import { loadDefaultEnv } from '@pstream/testkit';
import { z } from 'zod';
import { clearPrefix } from './redis-bench';
import { benchStream, interleave } from './scorer-throughput';

// API_TOKENS and the other query-API settings the environment leaves unset: from .env / .env.example
loadDefaultEnv();
const env = parseEnv(
  z.object({
    DATABASE_URL: commonEnv.DATABASE_URL,
    REDIS_URL: commonEnv.REDIS_URL,
    BENCH_FOLLOWERS: z.coerce.number().int().min(10_000).default(1_000_000),
    BENCH_REQUESTS: z.coerce.number().int().min(10).default(100),
  }),
  process.env,
);
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
const ms = (x: number) => `${x.toFixed(1)} ms`;

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t = process.hrtime.bigint();
  const r = await fn();
  return [Number(process.hrtime.bigint() - t) / 1e6, r];
}

async function main(): Promise<void> {
  const reuse = process.env.BENCH_REUSE;
  const generateOnly = !reuse && process.env.BENCH_GENERATE_ONLY === '1';
  const keep = generateOnly || (reuse !== undefined && process.env.BENCH_KEEP !== '0');
  const id = reuse ?? randomBytes(4).toString('hex');
  const schema = `bench_${id}`;
  const pool = createPool(env.DATABASE_URL, schema, 'bench-followers', 4);
  const redis = createRedis(env, 'bench-followers');
  const n = env.BENCH_FOLLOWERS;
  try {
    if (!reuse) await generate();
    async function generate(): Promise<void> {
      await migrate(pool, schema);
      // Generation only (the bench is not a service): the same rows the segmenter writes.
      const [fill] = await timed(async () => {
        await pool.query(
          `INSERT INTO people (profile_key, first_seen_at, last_active_at, stage_evaluated_at, stage, value_tier, traits)
         SELECT 'u-' || i, now() - interval '60 days', now() - (i % 120) * interval '1 day', now(),
                (ARRAY['potential','new','active','loyal','at_risk','churned'])[1 + i % 6], (ARRAY['high','medium','low','low'])[1 + i % 4],
                jsonb_build_object('gender', (ARRAY['female','male'])[1 + i % 2], 'birthYear', 1960 + i % 50, 'city', 'city-' || (i % 40))
         FROM generate_series(0, $1::int - 1) i`,
          [n + n / 10],
        );
        await pool.query(
          `INSERT INTO follows SELECT 'u-' || i, 'shop', 'big', true, now() - (i % 30) * interval '1 day', now() FROM generate_series(0, $1::int - 1) i`,
          [n],
        );
        await pool.query(
          `INSERT INTO follows SELECT 'u-' || i, 'shop', 'rival', true, now(), now() FROM generate_series($1::int - $2::int, $1::int + $2::int - 1) i`,
          [n, n / 10],
        );
        await pool.query(
          `INSERT INTO follow_history SELECT 'bench', 'f-' || i, 'u-' || i, 'shop', 'big', 'follow', now() - (i % 30) * interval '1 day' FROM generate_series(0, $1::int - 1) i`,
          [n],
        );
        await pool.query('ANALYZE');
      });
      console.log(
        `filled ${n} followers of shop:big, ${n / 5} of shop:rival (${n / 10} in both) in ${(fill / 1000).toFixed(1)} s`,
      );
    }
    if (generateOnly) return;

    const config = loadConfig({ ...process.env, PG_SCHEMA: schema, REDIS_PREFIX: `bench:${id}`, LOG_LEVEL: 'silent' });
    await seedInterests(config.FOLLOWERS_SAMPLE_SIZE, config.REDIS_PREFIX);
    /**
     * The interests of the followers the route samples (the first in the sample's hash order, a tenth more than it
     * reads), written through the scorer's store from 24 generated events each, so the route reads and decodes
     * states as in production (without them every read found nothing and fell back to `:int`, a second round
     * trip of its own). Once per data set: skipped when the first sampled follower has a state.
     */
    async function seedInterests(k: number, prefix: string): Promise<void> {
      const scorer = loadScorerConfig({ ...process.env, REDIS_PREFIX: prefix, LOG_LEVEL: 'silent' });
      const store = createInterestStore(redis, prefix, storeOptions(scorer));
      const { rows } = await pool.query<{ profile_key: string }>(
        `SELECT profile_key FROM follows WHERE target_type = 'shop' AND target_id = 'big' AND following
         ORDER BY hashtext(profile_key), profile_key LIMIT $1`,
        [Math.ceil(k * 1.1)],
      );
      if (rows.length === 0 || (await redis.exists(store.keys.person(rows[0]!.profile_key).state)) === 1) return;
      const [t] = await timed(async () => {
        const { messages, people } = benchStream(21, rows.length * 24, 24);
        const as = new Map(people.map((p, i) => [p, rows[i % rows.length]!.profile_key]));
        const prepared = interleave(messages.map((m) => ({ ...m, profileKey: as.get(m.profileKey)! }))).map((m) =>
          prepareEvent(m, new Map()),
        );
        for (let i = 0; i < prepared.length; i += 500) await store.apply(prepared.slice(i, i + 500));
      });
      console.log(`interests of ${rows.length} sampled followers written in ${(t / 1000).toFixed(1)} s`);
    }
    // Each request's steps: every statement the app sends (named by its first words), every Redis pipeline it
    // runs, and the GC pauses of this process inside the request — to say what the slowest requests waited on.
    const steps: { name: string; start: number; ms: number }[] = [];
    const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
      const start = performance.now();
      try {
        return await fn();
      } finally {
        steps.push({ name, start, ms: performance.now() - start });
      }
    };
    const statementName = (q: unknown) => {
      const text = typeof q === 'string' ? q : ((q as { text?: string }).text ?? '');
      return `pg:${text.replace(/\s+/g, ' ').trim().slice(0, 40)}`;
    };
    const timedPool = new Proxy(pool, {
      get(target, prop) {
        if (prop === 'query')
          return (q: unknown, ...rest: unknown[]) =>
            step(statementName(q), () => (target.query as (...a: unknown[]) => Promise<unknown>)(q, ...rest));
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    // (and the connections the app duplicates from it: the same timing)
    const timedRedisOf = (conn: typeof redis): typeof redis =>
      new Proxy(conn, {
        get(target, prop) {
          if (prop === 'duplicate')
            return (...args: unknown[]) =>
              timedRedisOf((target.duplicate as (...a: unknown[]) => typeof redis)(...args));
          if (prop === 'pipeline')
            return (...args: unknown[]) => {
              const pipeline = (target.pipeline as (...a: unknown[]) => ReturnType<typeof target.pipeline>)(...args);
              const exec = pipeline.exec.bind(pipeline);
              pipeline.exec = () => step(`redis:pipeline of ${pipeline.length}`, () => exec());
              return pipeline;
            };
          const v = Reflect.get(target, prop, target) as unknown;
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
    const timedRedis = timedRedisOf(redis);
    const gcs: { start: number; end: number }[] = [];
    const gcObserver = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) gcs.push({ start: e.startTime, end: e.startTime + e.duration });
    });
    gcObserver.observe({ entryTypes: ['gc'] });
    const app = await buildApp(config, {
      log: createLogger('bench', 'silent'),
      redis: timedRedis,
      pool: timedPool,
      checks: [],
      metrics: createMetrics('query-api'),
    });
    const headers = { authorization: `Bearer ${[...config.API_TOKENS.keys()][0]}` };
    const measure = async (url: string) => {
      const times: number[] = [];
      const requests: { ms: number; gc: number; steps: typeof steps }[] = [];
      let body: unknown;
      for (let i = 0; i < env.BENCH_REQUESTS + 5; i++) {
        steps.length = 0;
        const start = performance.now();
        const [t, res] = await timed(() => app.inject({ method: 'GET', url, headers }));
        const end = performance.now();
        if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}: ${res.body}`);
        // the first few warm the pool and the plans
        if (i >= 5) {
          times.push(t);
          // GC entries arrive after the pause: wait a turn so a pause inside this request is counted
          await new Promise((r) => setImmediate(r));
          const gc = gcs
            .filter((g) => g.end > start && g.start < end)
            .reduce((sum, g) => sum + Math.min(g.end, end) - Math.max(g.start, start), 0);
          requests.push({ ms: t, gc, steps: steps.map((x) => ({ ...x, start: x.start - start })) });
        }
        body = res.json();
      }
      // per step, p50 / p99 over the requests; then the slowest requests step by step
      const names = [...new Set(requests.flatMap((r) => r.steps.map((x) => x.name)))];
      for (const name of names) {
        // steps of one name at once (pipelines over several connections) count as the time they span together
        const xs = requests.map((r) => {
          const of = r.steps.filter((x) => x.name === name);
          if (of.length === 0) return 0;
          return Math.max(...of.map((x) => x.start + x.ms)) - Math.min(...of.map((x) => x.start));
        });
        console.log(`  ${name}: p50 ${ms(pct(xs, 0.5))}, p99 ${ms(pct(xs, 0.99))}`);
      }
      const gcsIn = requests.map((r) => r.gc);
      console.log(`  GC inside a request: p50 ${ms(pct(gcsIn, 0.5))}, p99 ${ms(pct(gcsIn, 0.99))}`);
      for (const r of [...requests].sort((a, b) => b.ms - a.ms).slice(0, 3))
        console.log(
          `  slow: ${ms(r.ms)} (GC ${ms(r.gc)}): ${r.steps.map((x) => `${x.name} @${x.start.toFixed(1)} ${ms(x.ms)}`).join('; ')}`,
        );
      return { p50: pct(times, 0.5), p99: pct(times, 0.99), body };
    };
    console.log('followers route, per step:');
    const followers = await measure('/v1/targets/shop/big/followers');
    console.log('overlap route, per step:');
    const overlap = await measure('/v1/targets/shop/big/followers/overlap?with=shop:rival');
    gcObserver.disconnect();
    await app.close();

    const scans: number[] = [];
    const joins: number[] = [];
    for (let i = 0; i < 5; i++) {
      scans.push(
        (
          await timed(() =>
            pool.query(`SELECT count(*) FROM follows WHERE target_type = 'shop' AND target_id = 'big' AND following`),
          )
        )[0],
      );
      joins.push(
        (
          await timed(() =>
            pool.query(`SELECT count(*) FROM follows a JOIN follows b USING (profile_key)
          WHERE a.target_type = 'shop' AND a.target_id = 'big' AND a.following AND b.target_type = 'shop' AND b.target_id = 'rival' AND b.following`),
          )
        )[0],
      );
    }
    const f = followers.body as { followers: number; sample: { size: number } };
    const o = overlap.body as { both: number; jaccard: number; exact: boolean };
    console.log(
      `followers route: p50 ${ms(followers.p50)}, p99 ${ms(followers.p99)} (followers ${f.followers}, interest sample ${f.sample.size})`,
    );
    console.log(
      `overlap route:   p50 ${ms(overlap.p50)}, p99 ${ms(overlap.p99)} (both ${o.both} of true ${n / 10}, jaccard ${o.jaccard.toFixed(4)} of true ${(n / 10 / (n + n / 10)).toFixed(4)}, exact ${o.exact})`,
    );
    console.log(
      `a scan instead:  count(*) of the followers median ${ms(pct(scans, 0.5))}, exact intersection median ${ms(pct(joins, 0.5))}`,
    );
  } finally {
    if (keep) console.log(`kept: BENCH_REUSE=${id} BENCH_FOLLOWERS=${n} measures this data again`);
    else {
      await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
      await clearPrefix(redis, `bench:${id}`).catch(() => undefined);
    }
    await closePool(pool);
    redis.disconnect();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
