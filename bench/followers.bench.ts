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
 * `BENCH_REUSE=<id>` (measure what such a run left, and keep it unless BENCH_KEEP=0).
 */
import { randomBytes } from 'node:crypto';
import {
  closePool,
  commonEnv,
  createLogger,
  createMetrics,
  createPool,
  createRedis,
  parseEnv,
} from '@pstream/platform';
import { migrate } from '@pstream/profile-store';
import { buildApp } from '@pstream/query-api/app';
import { loadConfig } from '@pstream/query-api/config';
import { loadDefaultEnv } from '@pstream/testkit';
import { z } from 'zod';

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
    const app = await buildApp(config, {
      log: createLogger('bench', 'silent'),
      redis,
      pool,
      checks: [],
      metrics: createMetrics('query-api'),
    });
    const headers = { authorization: `Bearer ${[...config.API_TOKENS.keys()][0]}` };
    const measure = async (url: string) => {
      const times: number[] = [];
      let body: unknown;
      for (let i = 0; i < env.BENCH_REQUESTS + 5; i++) {
        const [t, res] = await timed(() => app.inject({ method: 'GET', url, headers }));
        if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}: ${res.body}`);
        if (i >= 5) times.push(t); // the first few warm the pool and the plans
        body = res.json();
      }
      return { p50: pct(times, 0.5), p99: pct(times, 0.99), body };
    };
    const followers = await measure('/v1/targets/shop/big/followers');
    const overlap = await measure('/v1/targets/shop/big/followers/overlap?with=shop:rival');
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
    else await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
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
