/**
 * `pnpm bench:audiences` — audiences and similar people (docs/api.md §5.3, §5.4) at BENCH_PEOPLE
 * (default 1 000 000) generated profiles; printed, never asserted.
 *
 * Data: written straight into the stores, not through Kafka, in a schema and Redis prefix of its
 * own that are dropped at the end. Postgres rows come from set-based SQL over generate_series
 * (people with traits, stage and tiers; follows; 90 days of daily activity and tag activity;
 * purchases); Redis gets each person's state (its current scores, as the scorer writes them) and the per-tag
 * index, pipelined. Every
 * value is a fixed function of the person's number (`h(i, k)` below, the same in SQL and here),
 * so the exact brute force of /similar can rebuild every vector without reading the stores.
 *
 * Memory: 5 interest tags per person out of 200 (one "home" tag and 4 of its neighbours, so
 * people form overlapping clusters), which keeps Redis around 1 GB at 1 M people.
 *
 * Measured: preview of a 3-leaf and a 6-leaf rule (p50/p99 and per step; with the per-person check split
 * as the query API splits it, and beside it, rule by rule, as one statement), members paging rate, audience
 * updates/s (sweep of saved audiences while a writer moves interest scores, as the scorer would),
 * similar-people latency (p50/p99) and recall@10 against the brute force over everyone.
 *
 * Seeding 1 M people takes minutes: `BENCH_GENERATE_ONLY=1` seeds and keeps, then `BENCH_REUSE=<id>` measures
 * under the lock (and keeps the data unless BENCH_KEEP=0). `BENCH_GENERATE_ONLY=postgres` seeds Postgres only (no
 * bench lock needed: Redis stays idle), then `BENCH_REUSE=<id> BENCH_GENERATE_ONLY=redis` writes the Redis part
 * (each person's state as the scorer stores it, ~1.1 KB, and the per-tag index: ~5 min of a busy Redis at 1 M, so under
 * the lock or niced);
 * `BENCH_PARTS=previews,similar` runs only those measurements. Similar people: `BENCH_SIMILAR_PARALLEL=2,1`
 * measures each split of the Postgres read, `BENCH_SIMILAR_BEFORE=1` adds the reads as they were before
 * migration 140, person by person beside them (answers checked equal); `BENCH_SIMILAR_FROM=<n>` asks other
 * people than the default 50 (a second run asking the same people finds their pages cached: give each run of
 * a comparison its own); `BENCH_SIMILAR_CONNECTIONS=1,4` reads the candidates' states over 1, then 4 Redis
 * connections, person by person; `BENCH_SIMILAR_WARM=<n>` answers n other people first (default 1). Each answer's stages and the GC pauses inside it (and whether one was a major GC)
 * are printed, the heap the process holds as the answers start, and the slowest answers. `BENCH_PREWARM=1` prewarms
 * what the query API prewarms at start (its PG_PREWARM default, migration 210) before measuring; bench/cold-pages.sh
 * before a run makes it read this data from disk, as after a host's restart.
 */
import {
  createAudienceEngine,
  createInterestSource,
  createSimilarFinder,
  cosine,
  DEFAULT_SIMILAR,
  featureVector,
  type Rule,
  type Vector,
} from '@pstream/audiences';
import {
  encodeState,
  keys as keyLayout,
  tagMembersAtLeast,
  writeTagIndex,
  type TagChange,
} from '@pstream/interest-store';
import { closePool, createLogger, createPool, createRedis, scanKeys, statementBoundPool } from '@pstream/platform';
import {
  createAudienceStore,
  migrate,
  prewarm,
  QUERY_PREWARM,
  SOCIAL_TYPES_SQL,
  type SimilarityInputs,
} from '@pstream/profile-store';
import { createAudienceRefresher } from '@pstream/segmenter/audiences';
import { emptyState } from '@pstream/scoring';
import { TEST_DECAY } from '@pstream/scoring/testing';
import { loadDefaultEnv, testId } from '@pstream/testkit';
import { constants } from 'node:perf_hooks';
import { fmt, pct } from './redis-bench';

const N = Number(process.env.BENCH_PEOPLE ?? 1_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 30);
const SIMILAR_RUNS = Number(process.env.BENCH_SIMILAR_RUNS ?? 50);
/** BENCH_PARTS: which measurements run (comma-separated; default all): previews, save, live, sweep, similar. */
const parts = new Set((process.env.BENCH_PARTS ?? 'previews,save,live,sweep,similar').split(','));
/** BENCH_PREVIEW_RULES: which previews run (comma-separated; default both): 3-leaf, 6-leaf. */
const previewRules = new Set((process.env.BENCH_PREVIEW_RULES ?? '3-leaf,6-leaf').split(','));
const TAGS = 200;
const PER_PERSON = 5;
const CITIES = ['Hangzhou', 'Beijing', 'Shanghai', 'Shenzhen', 'Chengdu'];
const STAGES = ['potential', 'new', 'active', 'loyal', 'at_risk', 'churned'];
const VALUE = ['high', 'medium', 'low'];
const SOCIAL = ['active', 'potential', 'silent'];
const TYPES = ['click', 'click', 'like', 'purchase', 'share'];

/** The generator's hash: a fixed function of (person, slot), computed identically in SQL. */
const h = (i: number, k: number) => (i * 2654435761 + k * 40503) % 1000003;
const H_SQL = (k: number) => `((i::bigint * 2654435761 + ${k} * 40503) % 1000003)`;
const tagName = (t: number) => `category:c${String(t).padStart(3, '0')}`;
const tagsOf = (i: number) => {
  const home = h(i, 70) % TAGS;
  const out = [home];
  for (let j = 0; j < PER_PERSON - 1 && out.length < PER_PERSON; j++) {
    const t = (home + 1 + (h(i, 71 + j) % 10)) % TAGS;
    if (!out.includes(t)) out.push(t);
  }
  return out;
};
/** Score at the bench's instant of each of the person's tags (home tag stronger). */
const scoreOf = (i: number, j: number) => (j === 0 ? 5 : 0) + 0.5 + (h(i, 80 + j) % 2000) / 100;

const ms = (n: number) => `${n.toFixed(1)} ms`;

/** Over how many Redis connections the query API's /similar reads the candidates' states (BENCH_SIMILAR_CONNECTIONS). */
const READ_CONNECTIONS = 4; // the query API's SIMILAR_READ_CONNECTIONS default
/** Dedupe records in each seeded state: ~1.1 KB a person, as the scorer's states weigh (~450 KB per 400). */
const DEDUPE_RECORDS = 100;
/** Person i's stored state: its current scores, an empty model, and DEDUPE_RECORDS records of the last day. */
function benchState(i: number, scores: ReadonlyMap<string, number>): Buffer {
  const seen = new Map<number, number>();
  // any 52-bit digests do (they take 7 bytes each whatever they are): arithmetic, not a hash per record
  for (let d = 0; d < DEDUPE_RECORDS; d++)
    seen.set(h(i, 90 + d) * 2 ** 20 + ((i * 131 + d) % 2 ** 20), 1_700_000_000_000 + h(i, 190 + d) * 80);
  return encodeState(`v${i}`, emptyState(), seen, { scores });
}

/** `source` with each method's time added to `spent` under its name (the per-step figures of previews). */
function timedCalls<T extends object>(source: T, spent: Map<string, number>): T {
  return new Proxy(source, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        const s = performance.now();
        try {
          return await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        } finally {
          spent.set(String(prop), (spent.get(String(prop)) ?? 0) + performance.now() - s);
        }
      };
    },
  });
}
const silent = createLogger('bench-audiences', 'silent');

async function main(): Promise<void> {
  loadDefaultEnv();
  // BENCH_REUSE=<id> measures data a BENCH_KEEP=1 (or BENCH_GENERATE_ONLY=1) run left behind
  // (generation takes minutes at 1 M).
  const reuse = process.env.BENCH_REUSE;
  // Data seeded for reuse stays unless BENCH_KEEP=0; a fresh run's data goes unless BENCH_KEEP=1.
  const keep = process.env.BENCH_KEEP === '1' || (reuse !== undefined && process.env.BENCH_KEEP !== '0');
  const id = reuse ?? testId();
  const schema = `bench_aud_${id}`;
  const prefix = `bench:aud:${id}`;
  const pool = createPool(process.env.DATABASE_URL!, schema, 'bench-audiences', 4);
  const redis = createRedis({ REDIS_URL: process.env.REDIS_URL! }, 'bench-audiences');
  const k = keyLayout(prefix);
  const now = reuse ? Number(await redis.get(`${prefix}:meta:generatedAt`)) : Date.now();
  if (!Number.isFinite(now) || now === 0) throw new Error(`nothing to reuse under ${prefix}`);
  const today = new Date(now).toISOString().slice(0, 10);
  const decay = TEST_DECAY;
  const forward = 2 ** ((now - decay.landmarkMs) / decay.halfLifeMs);
  const log = (...a: unknown[]) => console.log(...a);
  log(`bench:audiences — ${fmt(N)} people, schema ${schema}, Redis prefix ${prefix}`);

  try {
    let t0 = Date.now();
    // BENCH_GENERATE_ONLY=1: seed, keep and stop (measure under the lock with BENCH_REUSE). `postgres` seeds only
    // Postgres (needs no bench lock: it leaves Redis alone); then `BENCH_REUSE=<id> BENCH_GENERATE_ONLY=redis`
    // writes the Redis part (the states and the per-tag index: Redis busy ~5 min at 1 M, so under the lock or niced).
    const only = process.env.BENCH_GENERATE_ONLY;
    if (!reuse && only !== 'redis') await generatePostgres();
    if ((!reuse && only !== 'postgres') || (reuse && only === 'redis')) await generateRedis();
    if (only !== undefined && only !== '0') return;
    async function generatePostgres(): Promise<void> {
      await migrate(pool, schema);
      await redis.set(`${prefix}:meta:generatedAt`, String(now));
      await pool.query(
        `INSERT INTO people (profile_key, first_seen_at, last_active_at, purchases, monetary_total, stage, stage_since, stage_evaluated_at, traits, value_tier, social_tier)
       SELECT 'p' || i, $2::timestamptz - interval '90 days', $2::timestamptz - (${H_SQL(9)} % 90) * interval '1 day', 0, 0,
              (ARRAY['${STAGES.join("','")}'])[1 + ${H_SQL(4)} % 6], $2, $2,
              jsonb_build_object('city', (ARRAY['${CITIES.join("','")}'])[1 + ${H_SQL(1)} % 5], 'gender', (ARRAY['f','m'])[1 + ${H_SQL(2)} % 2], 'birthYear', 1960 + ${H_SQL(3)} % 45),
              (ARRAY['${VALUE.join("','")}'])[1 + ${H_SQL(5)} % 3], (ARRAY['${SOCIAL.join("','")}'])[1 + ${H_SQL(6)} % 3]
       FROM generate_series(1, $1) i`,
        [N, new Date(now).toISOString()],
      );
      log(`  people: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      t0 = Date.now();
      await pool.query(
        `INSERT INTO purchases (profile_key, source, event_id, occurred_at, amount, currency, base_amount)
       SELECT 'p' || i, 'bench', 'b' || i, $2::timestamptz - (${H_SQL(9)} % 90) * interval '1 day', 50 + ${H_SQL(8)} % 2000, 'CNY', 50 + ${H_SQL(8)} % 2000
       FROM generate_series(1, $1) i WHERE ${H_SQL(7)} % 3 = 0`,
        [N, new Date(now).toISOString()],
      );
      await pool.query(
        `INSERT INTO follows (profile_key, target_type, target_id, following, since, changed_at)
       SELECT DISTINCT 'p' || i, 'shop', 's-' || (${H_SQL(60)} + j) % 1000, true, $2::timestamptz, $2::timestamptz
       FROM generate_series(1, $1) i, generate_series(0, 1) j WHERE (${H_SQL(50)} + j) % 3 <> 0`,
        [N, new Date(now).toISOString()],
      );
      log(`  purchases, follows: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      t0 = Date.now();
      // 4 activity rows per person over 90 days; the same rows per tag (the person's home tag).
      const activity = `SELECT 'p' || i AS k, ($2::date - ((${H_SQL(20)} + j) % 90)::int) AS day, (ARRAY['${TYPES.join("','")}'])[1 + (${H_SQL(10)} + j) % 5] AS type,
                             'product' AS tt, 'p-' || (${H_SQL(30)} + j) % 5000 AS tid, 1 + (${H_SQL(40)} + j) % 3 AS n,
                             'category:c' || lpad((${H_SQL(70)} % ${TAGS})::text, 3, '0') AS tag
                      FROM generate_series(1, $1) i, generate_series(0, 3) j`;
      // (the tag counts as the row's tags, migration 070)
      await pool.query(
        `INSERT INTO activity (profile_key, day, type, target_type, target_id, tags, n)
       SELECT k, day, type, tt, tid, tag, sum(n) FROM (${activity}) a GROUP BY k, day, type, tt, tid, tag`,
        [N, today],
      );
      // as autovacuum leaves bulk-written tables (infra:up turns it on where we run Postgres): hint
      // bits set and pages all-visible, so index-only scans (migrations 140, 170) read no heap page
      await pool.query('VACUUM (ANALYZE) people, purchases, activity, identities, follows');
      await pool.query('ANALYZE');
      log(`  activity (90 days): ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      const { rows: size } = await pool.query<{ s: string }>(
        `SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) AS s FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'`,
        [schema],
      );
      log(`  Postgres schema size: ${size[0]!.s}`);
    }
    /**
     * Each person's interests as the scorer stores them today: one state string carrying its current scores
     * (state.ts, format 0x03), padded to ~1.1 KB with a dedupe record of DEDUPE_RECORDS digests (what a state
     * holds besides its scores, BENCHMARKS.md "Followers"), so /similar reads as many bytes per candidate as in
     * production — before, the bench wrote `:int` sets only, and each read was 401 GETs finding nothing, then
     * 401 ZRANGEs of small replies. The per-tag index is written with `old: null` (nobody held a tag before):
     * with the old score unknown, the score-range script looked for each entry in every bucket (35 min at 1 M).
     * Each tag's entries here share ~100 scores (~250 people each at 1 M): a bucket of one score cannot split, and
     * until tag-range.ts told such a bucket by its two ends every add read it whole (quadratic: not done in 500 s).
     */
    async function generateRedis(): Promise<void> {
      t0 = Date.now();
      let indexMs = 0;
      const BATCH = 5000;
      for (let start = 1; start <= N; start += BATCH) {
        const p = redis.pipeline();
        const index: TagChange[] = [];
        for (let i = start; i < Math.min(N + 1, start + BATCH); i++) {
          const scores = new Map<string, number>();
          tagsOf(i).forEach((t, j) => {
            const stored = scoreOf(i, j) * forward;
            scores.set(tagName(t), stored);
            index.push({ tag: tagName(t), person: `p${i}`, score: String(stored), old: null });
          });
          p.set(k.person(`p${i}`).state, benchState(i, scores));
        }
        await p.exec();
        const s = Date.now();
        await writeTagIndex(redis, k, index);
        indexMs += Date.now() - s;
        // progress every 10 %: a step that grows with the people already written shows here (the index's scripts'
        // server time is Redis's commandstats, every client's EVALSHAs)
        const done = Math.min(N, start + BATCH - 1);
        if (N >= 100_000 && Math.floor(done / (N / 10)) > Math.floor((start - 1) / (N / 10))) {
          const [stats, memory] = [await redis.info('commandstats'), await redis.info('memory')];
          const evalsha = Number(/cmdstat_evalsha:calls=\d+,usec=(\d+)/.exec(stats)?.[1] ?? 0) / 1e6;
          log(
            `  Redis: ${fmt(done)} people in ${((Date.now() - t0) / 1000).toFixed(1)} s, index ${(indexMs / 1000).toFixed(1)} s (EVALSHA server time ${evalsha.toFixed(1)} s), memory ${/used_memory_human:(\S+)/.exec(memory)?.[1]}`,
          );
        }
      }
      const mem = (await redis.info('memory')).match(/used_memory_human:(\S+)/)?.[1];
      log(
        `  Redis states + per-tag index: ${((Date.now() - t0) / 1000).toFixed(1)} s, of which the index ${(indexMs / 1000).toFixed(1)} s (server memory now ${mem})`,
      );
    }

    /** Rewrites one tag's index from the generator (the live-stream writer moves its scores). */
    async function restoreTag(t: number): Promise<void> {
      const changes: TagChange[] = [];
      for (let i = 1; i <= N; i++)
        tagsOf(i).forEach(
          (x, j) =>
            x === t && changes.push({ tag: tagName(t), person: `p${i}`, score: String(scoreOf(i, j) * forward) }),
        );
      await writeTagIndex(redis, k, changes);
    }
    if (reuse) {
      await pool.query('DELETE FROM audiences');
      await restoreTag(42);
    }
    // BENCH_PREWARM=1: what the query API does at start (its PG_PREWARM default) before anything is measured
    if (process.env.BENCH_PREWARM === '1') {
      const s = performance.now();
      const done = await prewarm(pool, QUERY_PREWARM);
      log(
        done === null
          ? '  prewarm: pg_prewarm is not installed'
          : `  prewarm (${ms(performance.now() - s)}): ${done.map((d) => `${d.relation} ${d.mode} ${fmt(d.blocks)} blocks ${ms(d.ms)}`).join(', ')}`,
      );
    }

    const store = createAudienceStore(pool);
    const engine = createAudienceEngine({ facts: store, interests: createInterestSource(redis, k, decay, 10) });
    const rule3 = (r: number): Rule => ({
      all: [
        { interest: { tag: tagName(r % TAGS), minValue: 3 } },
        { trait: { name: 'city', op: 'eq', value: CITIES[r % 5]! } },
        { did: { type: 'purchase', atLeast: 1, inLastDays: 30 } },
      ],
    });
    const rule6 = (r: number): Rule => ({
      all: [
        { interest: { tag: tagName(r % TAGS), minValue: 2 } },
        { stage: { in: ['active', 'loyal', 'new'] } },
        { tier: { value: ['high', 'medium'] } },
        { trait: { name: 'birthYear', op: 'gte', value: 1980 } },
        { not: { follows: { type: 'shop', id: `s-${r % 1000}` } } },
        { did: { type: 'click', tag: tagName(r % TAGS), atLeast: 1, inLastDays: 60 } },
      ],
    });
    // Previews evaluate as the query API does (services/query-api/src/app.ts): through a pool with a
    // statement timeout whose statements Postgres never JIT-compiles (createPool sets jit = off on
    // every pool), the per-person check split into BENCH_PREVIEW_PARALLEL statements at once (the
    // query API's PREVIEW_PARALLEL, 2); beside it, alternately rule by rule, the same rules with one
    // statement per check (as before), so one run gives the ratio. Each source call is timed, so
    // the slowest rules show which step made them slow.
    const previewPool = statementBoundPool(pool, 600_000, { jit: 'off' });
    const split = Number(process.env.BENCH_PREVIEW_PARALLEL ?? 2);
    const previewEngines = [
      { label: `checks split in ${split} (as the query API)`, parallel: split },
      { label: 'one statement per check', parallel: 1 },
    ].map(({ label, parallel }) => {
      const spent = new Map<string, number>();
      const engine = createAudienceEngine({
        facts: timedCalls(createAudienceStore(previewPool, { parallel }), spent),
        interests: timedCalls(createInterestSource(redis, k, decay, 10), spent),
      });
      return { label, spent, engine };
    });
    for (const [name, make] of [
      ['3-leaf', rule3],
      ['6-leaf', rule6],
    ] as const) {
      if (!parts.has('previews')) break;
      if (!previewRules.has(name)) continue;
      type Run = { r: number; t: number; members: number; keys: string; steps: Map<string, number> };
      const runs = previewEngines.map((): Run[] => []);
      for (const e of previewEngines) await e.engine.members(make(0), Date.now()); // warm-up
      for (let r = 1; r <= RUNS; r++) {
        const at = Date.now(); // both at one instant: their answers are compared below
        for (let j = 0; j < previewEngines.length; j++) {
          const i = (r + j) % previewEngines.length; // alternate which one goes first
          const e = previewEngines[i]!;
          e.spent.clear();
          const s = performance.now();
          const m = await e.engine.members(make(r * 7), at);
          runs[i]!.push({
            r: r * 7,
            t: performance.now() - s,
            members: m.length,
            keys: m.join(),
            steps: new Map(e.spent),
          });
        }
      }
      const p50s = runs.map((rs) =>
        pct(
          rs.map((x) => x.t),
          50,
        ),
      );
      const p99s = runs.map((rs) =>
        pct(
          rs.map((x) => x.t),
          99,
        ),
      );
      previewEngines.forEach((e, i) => {
        const mine = runs[i]!;
        const sizes = mine.reduce((a, x) => a + x.members, 0);
        log(
          `preview ${name}, ${e.label}: p50 ${ms(p50s[i]!)}, p99 ${ms(p99s[i]!)} over ${RUNS} rules (mean ${fmt(sizes / RUNS)} members)`,
        );
        const stepNames = [...new Set(mine.flatMap((x) => [...x.steps.keys()]))];
        log(
          `  per step, p50 / p99 (ms; calls made in parallel each count whole): ${stepNames
            .map((n) => {
              const xs = mine.map((x) => x.steps.get(n) ?? 0);
              return `${n} ${pct(xs, 50).toFixed(1)} / ${pct(xs, 99).toFixed(1)}`;
            })
            .join(', ')}`,
        );
        for (const x of [...mine].sort((a, b) => b.t - a.t).slice(0, 3))
          log(
            `  slow: rule ${x.r} ${ms(x.t)} (${x.members} members): ${[...x.steps].map(([n, v]) => `${n} ${v.toFixed(1)}`).join(', ')}`,
          );
      });
      // the answers must not depend on the split
      runs[0]!.forEach((x, n) => {
        if (x.keys !== runs[1]![n]!.keys) throw new Error(`rule ${x.r}: the split check answered other members`);
      });
      log(
        `  ratio, split ÷ one statement: p50 ${(p50s[0]! / p50s[1]!).toFixed(2)}, p99 ${(p99s[0]! / p99s[1]!).toFixed(2)}`,
      );
    }
    await closePool(previewPool);

    if (parts.has('save')) {
      // A big saved audience, paged through 1000 at a time.
      const big: Rule = { stage: { in: ['active', 'loyal'] } };
      t0 = Date.now();
      const bigNow = Date.now();
      const saved = await store.create({
        id: `bench-${testId()}`,
        name: 'big',
        rule: big,
        ...(await engine.snapshot(big, bigNow)),
        nowMs: bigNow,
      });
      log(`save of a ${fmt(saved.count)}-member audience: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      t0 = performance.now();
      let paged = 0;
      let pages = 0;
      for (let after: string | undefined; ;) {
        const page = await store.members(saved.id, after, 1000);
        paged += page.members.length;
        pages++;
        if (!page.more) break;
        after = page.members.at(-1);
      }
      const pagingS = (performance.now() - t0) / 1000;
      log(
        `members paging: ${fmt(pages / pagingS)} pages/s, ${fmt(paged / pagingS)} members/s (${fmt(paged)} members, limit 1000)`,
      );
    }
    if (parts.has('live')) {
      // Updates under a live stream: a writer moves the interest scores of random people in one tag
      // (as the scorer's index sync does) while the sweep re-evaluates a saved interest audience.
      const liveTag = tagName(42);
      const holders = await tagMembersAtLeast(redis, k, liveTag, -Number.MAX_VALUE);
      const live: Rule = {
        all: [{ interest: { tag: liveTag, minValue: 4 } }, { trait: { name: 'gender', op: 'eq', value: 'f' } }],
      };
      const liveId = `bench-live-${testId()}`;
      const liveNow = Date.now();
      await store.create({
        id: liveId,
        name: 'live',
        rule: live,
        ...(await engine.snapshot(live, liveNow)),
        nowMs: liveNow,
      });
      // the scorer writes each entry with the old score it read from the person's state; the
      // writer here knows it the same way: from the generator (what was seeded), then its own writes
      const current = new Map<string, string | null>();
      for (const person of holders) {
        const i = Number(person.slice(1));
        const j = tagsOf(i).indexOf(42);
        current.set(person, j < 0 ? null : String(scoreOf(i, j) * forward));
      }
      let writing = true;
      let writes = 0;
      const writer = (async () => {
        let seed = 1;
        while (writing) {
          const moves: TagChange[] = [];
          for (let w = 0; w < 500; w++) {
            seed = (seed * 48271) % 2147483647;
            // a holder of the tag whose score moves (what the scorer's index write does), across the threshold or not
            const score = String((0.5 + (seed % 2000) / 100) * forward);
            const person = holders[seed % holders.length]!;
            moves.push({ tag: liveTag, person, score, old: current.get(person) ?? null });
            current.set(person, score);
          }
          await writeTagIndex(redis, k, moves);
          writes += 500;
        }
      })();
      let changes = 0;
      const sweepTimes: number[] = [];
      const liveStart = performance.now();
      for (let r = 0; r < 10; r++) {
        const s = performance.now();
        const at = Date.now();
        const { members, watch } = await engine.snapshot(live, at);
        const c = await store.refresh(liveId, members, at, { watch });
        sweepTimes.push(performance.now() - s);
        changes += c.entered + c.exited;
      }
      writing = false;
      await writer;
      await restoreTag(42); // the index back to what the people's own sets say
      const liveS = (performance.now() - liveStart) / 1000;
      log(
        `membership updates under a live stream: ${fmt(changes / liveS)} entries+exits/s published to the outbox ` +
          `(${fmt(changes)} in ${liveS.toFixed(1)} s; writer ${fmt(writes / liveS)} score updates/s; one audience sweep p50 ${ms(pct(sweepTimes, 50))})`,
      );
    }
    if (parts.has('sweep')) await sweepDue();
    if (parts.has('similar')) {
      // Similar people: latency and recall@10 against the brute force over everyone.
      const at = now; // generated scores are "at now"; the vectors of both sides are taken at this instant
      const vectorOf = (i: number): Vector => {
        const stored = new Map(tagsOf(i).map((t, j) => [tagName(t), scoreOf(i, j) * forward]));
        const spend = h(i, 7) % 3 === 0 && h(i, 9) % 90 < 365 ? 50 + (h(i, 8) % 2000) : 0;
        let social = 0;
        for (let j = 0; j < 4; j++) {
          const type = TYPES[(h(i, 10) + j) % 5]!;
          if ((type === 'like' || type === 'share') && (h(i, 20) + j) % 90 <= 29) social += 1 + ((h(i, 40) + j) % 3);
        }
        return featureVector(stored, { spend, social }, at, decay, 10);
      };
      // Latencies first, on their own, before the brute force's 1 M vectors exist (with them on the
      // heap every scavenge of an answer took 5-30 ms: GC the query API does not have), for several
      // candidate caps (`exact`) interleaved person by person.
      // BENCH_SIMILAR_PARALLEL: into how many statements the candidates' Postgres read is split (a list: each is measured)
      // BENCH_SIMILAR_CONNECTIONS: over how many Redis connections the candidates' states are read (a list: each is
      // measured; the query API's SIMILAR_READ_CONNECTIONS default unless given)
      const list = (name: string, fallback: number) => (process.env[name] ?? `${fallback}`).split(',').map(Number);
      const caps = list('BENCH_SIMILAR_EXACT', DEFAULT_SIMILAR.exact).flatMap((exact) =>
        list('BENCH_SIMILAR_PARALLEL', DEFAULT_SIMILAR.parallel).flatMap((parallel) =>
          list('BENCH_SIMILAR_CONNECTIONS', READ_CONNECTIONS).map((connections) => ({ exact, parallel, connections })),
        ),
      );
      const extra = Array.from({ length: Math.max(0, ...caps.map((c) => c.connections - 1)) }, () => redis.duplicate());
      // the Postgres calls of an answer timed (consent and the spend/social facts; they run beside Redis reads)
      const similarSpent = new Map<string, number>();
      const similarSteps: Map<string, number>[] = [];
      // how many keys each answer sent to Postgres, in how many statements
      let sent = { keys: 0, calls: 0 };
      const sentPer: (typeof sent)[] = [];
      const counted = {
        ...store,
        similarityInputs: (keys: readonly string[], nowMs: number) => {
          sent = { keys: sent.keys + keys.length, calls: sent.calls + 1 };
          return store.similarityInputs(keys, nowMs);
        },
      };
      // each stage of an answer (the first way's), and the query API's GC pauses inside each answer
      const stages = new Map<string, number>();
      const stagesPer: Map<string, number>[] = [];
      const gcs: { start: number; end: number; major: boolean }[] = [];
      const gcObserver = new PerformanceObserver((list) => {
        for (const e of list.getEntries())
          gcs.push({
            start: e.startTime,
            end: e.startTime + e.duration,
            major: (e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR,
          });
      });
      // what this process's heap holds as the answers are timed (the query API's own heap holds its caches only)
      const heap = process.memoryUsage();
      log(
        `  heap before the answers: ${(heap.heapUsed / 1e6).toFixed(0)} MB used of ${(heap.heapTotal / 1e6).toFixed(0)} MB`,
      );
      gcObserver.observe({ entryTypes: ['gc'] });
      const gcPer: number[] = [];
      // each way's Redis read of the candidates' states (ms per answer)
      const redisReads: number[][] = caps.map(() => []);
      const finders = caps.map(({ exact, parallel, connections }, c) =>
        createSimilarFinder(redis, k, timedCalls(counted, similarSpent), {
          decay,
          valueScale: 10,
          ...DEFAULT_SIMILAR,
          exact,
          parallel,
          connections: extra.slice(0, connections - 1),
          onStage: (n: string, t: number) => {
            if (c === 0) stages.set(n, (stages.get(n) ?? 0) + t);
            if (n === 'read.redis') redisReads[c]!.push(t);
          },
        }),
      );
      // BENCH_SIMILAR_BEFORE=1: beside them, person by person, the reads as they were before migration 140
      // (issue 21): consent from the people rows and the facts, two statements at once over every key, so
      // one run gives the ratio whatever the box's load does meanwhile
      if (process.env.BENCH_SIMILAR_BEFORE === '1') {
        const before = {
          ...store,
          similarityInputs: async (keys: readonly string[], nowMs: number) => {
            const [consent, facts] = await Promise.all([
              pool.query<{ id: string }>(
                `SELECT t.id FROM unnest($1::text[]) AS t(id)
                 LEFT JOIN identities i ON i.id = t.id
                 LEFT JOIN people p ON p.profile_key = coalesce(i.profile_key, t.id)
                 WHERE coalesce(p.personalization, true)`,
                [[...new Set(keys)]],
              ),
              pool.query<{ k: string; spend: string | null; social: string | null }>(
                `SELECT k,
                  (SELECT sum(base_amount) FROM purchases p WHERE p.profile_key = k AND p.occurred_at > $2) AS spend,
                  (SELECT sum(n) FROM activity a WHERE a.profile_key = k AND a.type IN (${SOCIAL_TYPES_SQL}) AND a.day >= $3 AND a.target_type IS NOT NULL) AS social
                 FROM unnest($1::text[]) k`,
                [
                  keys,
                  new Date(nowMs - 365 * 86_400_000).toISOString(),
                  new Date(nowMs - 29 * 86_400_000).toISOString().slice(0, 10),
                ],
              ),
            ]);
            const allowed = new Set(consent.rows.map((r) => r.id));
            return new Map<string, SimilarityInputs>(
              facts.rows.map((r) => [
                r.k,
                { spend: Number(r.spend ?? 0), social: Number(r.social ?? 0), allowed: allowed.has(r.k) },
              ]),
            );
          },
        };
        caps.push({ exact: DEFAULT_SIMILAR.exact, parallel: 0, connections: 1 });
        finders.push(createSimilarFinder(redis, k, before, { decay, valueScale: 10, ...DEFAULT_SIMILAR, parallel: 1 }));
      }
      const latencies: number[][] = caps.map(() => []);
      const answers: { i: number; got: { id: string; similarity: number }[][] }[] = [];
      // BENCH_SIMILAR_WARM=<n>: before the timed answers, each way answers n people picked apart from the timed
      // ones, as a service that has been answering for a while has read its indexes' upper pages and the
      // covering indexes' hot parts; 1 (default) only warms the connections and the code
      const warm = Number(process.env.BENCH_SIMILAR_WARM ?? 1);
      for (let w = 0; w < warm; w++)
        for (const f of finders) await f.similar(`p${1 + ((h(w + 5_000_000, 98) * 7) % N)}`, 10, at);
      // BENCH_SIMILAR_FROM: which people are asked (a run asks people its pages have not seen yet
      // when it differs from the last run's: the same people again find their pages cached)
      const from = Number(process.env.BENCH_SIMILAR_FROM ?? 0);
      for (let r = 0; r < SIMILAR_RUNS; r++) {
        const i = 1 + ((h(r + from, 99) * 7) % N);
        const got: { id: string; similarity: number }[][] = [];
        // which finder goes first alternates from person to person
        for (const c of finders.map((_, j) => (j + r) % finders.length)) {
          const f = finders[c]!;
          similarSpent.clear();
          stages.clear();
          sent = { keys: 0, calls: 0 };
          const s = performance.now();
          got[c] = await f.similar(`p${i}`, 10, at);
          const e = performance.now();
          latencies[c]!.push(e - s);
          if (c === 0) {
            similarSteps.push(new Map(similarSpent));
            sentPer.push(sent);
            stagesPer.push(new Map(stages));
            // the entries of pauses inside this answer arrive after it: read them below, by time
            gcPer.push(s, e);
          }
        }
        answers.push({ i, got });
        // every way of reading answers the same
        for (const g of got)
          if (JSON.stringify(g) !== JSON.stringify(got[0])) throw new Error(`p${i}: the similar answers differ`);
      }
      await new Promise((r) => setTimeout(r, 50)); // the last GC entries
      gcObserver.disconnect();
      const gcIn: number[] = [];
      let majorIn = 0;
      for (let j = 0; j + 1 < gcPer.length; j += 2) {
        const [s, e] = [gcPer[j]!, gcPer[j + 1]!];
        const inside = gcs.filter((g) => g.end > s && g.start < e);
        gcIn.push(inside.reduce((sum, g) => sum + Math.min(e, g.end) - Math.max(s, g.start), 0));
        if (inside.some((g) => g.major)) majorIn++;
      }
      for (const conn of extra) conn.disconnect();
      t0 = Date.now();
      const all: Vector[] = new Array(N + 1);
      for (let i = 1; i <= N; i++) all[i] = vectorOf(i);
      log(`  brute force vectors built in ${((Date.now() - t0) / 1000).toFixed(1)} s (a gauge of the box's load)`);
      const recall = caps.map(() => 0);
      let maxDiff = 0;
      for (const { i, got } of answers) {
        const scores: number[] = [];
        for (let j = 1; j <= N; j++) if (j !== i) scores.push(cosine(all[i]!, all[j]!));
        scores.sort((a, b) => b - a);
        const tenth = scores[9]!;
        got.forEach((g, c) => {
          // a tie at the 10th place counts as recalled whichever tied person is named
          recall[c]! += g.filter((x) => x.similarity >= tenth - 1e-9).length / 10;
          for (const x of g)
            maxDiff = Math.max(maxDiff, Math.abs(x.similarity - cosine(all[i]!, all[Number(x.id.slice(1))]!)));
        });
      }
      caps.forEach(({ exact, parallel, connections }, c) =>
        log(
          `similar (exact cosine on ${exact}, ${parallel === 0 ? 'Postgres read as before migration 140' : `Postgres read in ${parallel}`}, states over ${connections} Redis connection${connections === 1 ? '' : 's'}): p50 ${ms(pct(latencies[c]!, 50))}, p99 ${ms(pct(latencies[c]!, 99))}, recall@10 ${(recall[c]! / SIMILAR_RUNS).toFixed(3)} over ${SIMILAR_RUNS} people${redisReads[c]!.length > 0 ? `; read.redis p50 ${ms(pct(redisReads[c]!, 50))}, p99 ${ms(pct(redisReads[c]!, 99))}` : ''} ` +
            `(candidates: ${DEFAULT_SIMILAR.perTag} on each side of the person's score in each of their ${DEFAULT_SIMILAR.seedTags} strongest tags)`,
        ),
      );
      log(`  max |answer − brute force| ${maxDiff.toExponential(1)}`);
      log(
        `  its Postgres reads (exact ${caps[0]!.exact} in ${caps[0]!.parallel}, beside its last Redis read; the statements' times summed), p50 / p99: ${[
          ...new Set(similarSteps.flatMap((x) => [...x.keys()])),
        ]
          .map((n) => {
            const xs = similarSteps.map((x) => x.get(n) ?? 0);
            return `${n} ${pct(xs, 50).toFixed(1)} / ${pct(xs, 99).toFixed(1)} ms`;
          })
          .join(', ')}; keys per answer ${pct(
          sentPer.map((x) => x.keys),
          50,
        )} in ${pct(
          sentPer.map((x) => x.calls),
          50,
        )} statements`,
      );
      const stageNames = [...new Set(stagesPer.flatMap((x) => [...x.keys()]))];
      log(
        `  its stages (exact ${caps[0]!.exact} in ${caps[0]!.parallel}), p50 / p99: ${stageNames
          .map((n) => {
            const xs = stagesPer.map((x) => x.get(n) ?? 0);
            return `${n} ${pct(xs, 50).toFixed(1)} / ${pct(xs, 99).toFixed(1)} ms`;
          })
          .join(
            ', ',
          )}; GC pauses inside an answer ${pct(gcIn, 50).toFixed(1)} / ${pct(gcIn, 99).toFixed(1)} ms (max ${Math.max(0, ...gcIn).toFixed(1)}; ${majorIn} answers with a major GC)`,
      );
      // the slowest answers, stage by stage (what the tail is made of)
      const slowest = latencies[0]!
        .map((t, j) => ({ t, j }))
        .sort((a, b) => b.t - a.t)
        .slice(0, 3);
      for (const { t, j } of slowest)
        log(
          `  slow answer ${t.toFixed(1)} ms: ${stageNames.map((n) => `${n} ${(stagesPer[j]!.get(n) ?? 0).toFixed(1)}`).join(', ')}, GC ${gcIn[j]!.toFixed(1)} ms`,
        );
    }
  } finally {
    if (keep || (process.env.BENCH_GENERATE_ONLY ?? '0') !== '0')
      log(`kept: BENCH_REUSE=${id} measures this data again`);
    else await drop();
    redis.disconnect();
    await pool.end();
  }

  /**
   * The saved-audience sweep's cost follows the people due: a large audience (everyone who clicked
   * in the last 30 days) is saved with each member's instant of leaving by time alone; then 1 % and
   * 0.1 % of its watch rows are made due, alternately, and one sweep round re-checks them.
   */
  async function sweepDue(): Promise<void> {
    const store = createAudienceStore(pool);
    const engine = createAudienceEngine({ facts: store, interests: createInterestSource(redis, k, decay, 10) });
    const rule: Rule = { did: { type: 'click', atLeast: 1, inLastDays: 30 } };
    const id = `bench-due-${testId()}`;
    let t = Date.now();
    const at = now;
    const snap = await engine.snapshot(rule, at);
    await store.create({ id, name: 'clicked lately', rule, ...snap, nowMs: at });
    await pool.query('ANALYZE audience_watch');
    log(
      `sweep of due people: audience of ${fmt(snap.members.length)} members with ${fmt(snap.watch.size)} watch rows saved in ${((Date.now() - t) / 1000).toFixed(1)} s`,
    );
    const sweep = createAudienceRefresher({
      engine,
      store,
      log: silent,
      onChanges: () => undefined,
      dueBatch: 1_000_000,
      touchGraceMs: 0,
      fullEveryMs: 0,
    });
    const times: Record<string, number[]> = { '1%': [], '0.1%': [] };
    for (let round = 0; round < 3; round++) {
      for (const [label, share] of [
        ['1%', 0.01],
        ['0.1%', 0.001],
      ] as const) {
        const n = Math.round(snap.members.length * share);
        const { rowCount } = await pool.query(
          `UPDATE audience_watch SET due_at = $2 WHERE audience_id = $1 AND profile_key IN (SELECT profile_key FROM audience_watch WHERE audience_id = $1 ORDER BY md5(profile_key || $4) LIMIT $3)`,
          [id, new Date(at - 1).toISOString(), n, String(round)],
        );
        t = performance.now();
        const r = await sweep(at);
        times[label]!.push(performance.now() - t);
        if (r.checked !== rowCount) throw new Error(`sweep checked ${r.checked} people, ${rowCount} were due`);
      }
    }
    const [a, b] = [pct(times['1%']!, 50), pct(times['0.1%']!, 50)];
    log(
      `  one sweep round, median of 3: 1 % due (${fmt(snap.members.length * 0.01)}) ${ms(a)}, 0.1 % due ${ms(b)} — ratio ${(a / b).toFixed(1)}`,
    );
    await store.remove(id);
  }

  async function drop(): Promise<void> {
    await pool
      .query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
      .catch((err: unknown) => console.error('drop schema', err));
    for (const match of [`${prefix}:*`]) {
      for (let found = 1; found > 0;) {
        found = 0;
        for await (const batch of scanKeys(redis, match, 5000)) {
          if (batch.length === 0) continue;
          found += batch.length;
          await redis.unlink(...batch);
        }
      }
    }
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
