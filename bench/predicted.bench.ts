/**
 * `pnpm bench:predicted` — predicted traits (docs/api.md §5.9); printed, never asserted.
 *
 * 1. The model at BENCH_PEOPLE (default 1 000 000) people, in this process: each person's §5.3
 *    vector (8 category clicks leaning by gender, 6 brand clicks leaning by age band, 3 product
 *    tags), 80 % giving their gender and 86 % their birth year. A click goes to the person's own
 *    group with a chance that is `lean` for gender and, for the three age groups, as far from
 *    uniform — at lean 0.5 neither carries any signal. Measured: time to take the people
 *    in, to fit each trait, to predict everyone else; the process' peak RSS; and the quality —
 *    holdout accuracy beside the baseline, and the share of people who gave no gender predicted
 *    right — on a stream with a signal (BENCH_LEAN, default 0.85) and on one without (0.5).
 * 2. The whole trainer (Postgres + Redis read page by page, fit, predictions written) at
 *    BENCH_STORE_PEOPLE (default 20 000) people written straight into a schema and Redis prefix of
 *    its own (dropped at the end), to give the stores' share per person; the 1 M figure is
 *    extrapolated from it and says so.
 */
import { keys as keyLayout } from '@pstream/interest-store';
import { createLogger, createPool, createRedis, scanKeys } from '@pstream/platform';
import { createModelStore, migrate } from '@pstream/profile-store';
import { loadConfig as queryConfig } from '@pstream/query-api/config';
import { createModelTrainer } from '@pstream/query-api/trainer';
import { decayParams } from '@pstream/scoring';
import { createPopulation, seededRandom, type PredictedTrait } from '@pstream/traits-model';
import { loadDefaultEnv, testId } from '@pstream/testkit';
import { fmt } from './redis-bench';

const N = Number(process.env.BENCH_PEOPLE ?? 1_000_000);
const STORE_N = Number(process.env.BENCH_STORE_PEOPLE ?? 20_000);
const LEAN = Number(process.env.BENCH_LEAN ?? 0.85);
const GENDER = {
  f: ['dress', 'skirt', 'makeup', 'handbags', 'heels'],
  m: ['watches', 'tools', 'razors', 'sneakers', 'consoles'],
} as const;
const AGES = {
  '18-24': ['neon', 'pixel', 'drift'],
  '30-34': ['nordic', 'urbane', 'keystone'],
  '50+': ['heritage', 'classic', 'evergreen'],
} as const;
const BIRTH_YEAR = { '18-24': 2004, '30-34': 1994, '50+': 1966 } as const;
const BANDS = Object.keys(AGES) as (keyof typeof AGES)[];

/**
 * The chance a click goes to the person's own group among `k`, for a lean given as for two groups:
 * `lean` at k = 2, and 1/k (no signal) at lean 0.5 whatever k.
 */
const ownShare = (lean: number, k: number) => (1 + (k - 1) * (2 * lean - 1)) / k;

type Person = {
  key: string;
  gender: 'f' | 'm';
  band: keyof typeof AGES;
  traits: Record<string, unknown>;
  vector: Map<string, number>;
};

/** Person `i` of a stream leaning `lean` (tag values as §4.1 would give them: 10·tanh(clicks·w/10)). */
function person(i: number, lean: number, random: () => number): Person {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const gender = random() < 0.6 ? 'f' : 'm';
  const band = pick(BANDS);
  const raw = new Map<string, number>();
  const add = (tag: string) => raw.set(tag, (raw.get(tag) ?? 0) + 0.6 + random() * 0.8);
  for (let n = 0; n < 8; n++) add(`category:${pick(GENDER[random() < lean ? gender : gender === 'f' ? 'm' : 'f'])}`);
  for (let n = 0; n < 6; n++)
    add(`brand:${pick(AGES[random() < ownShare(lean, BANDS.length) ? band : pick(BANDS.filter((b) => b !== band))])}`);
  for (let n = 0; n < 3; n++) add(`product:p-${Math.floor(random() * 5000)}`);
  const vector = new Map([...raw].map(([t, s]) => [t, 10 * Math.tanh(s / 10)]));
  const traits: Record<string, unknown> = {};
  if (i % 5 !== 0) traits.gender = gender;
  if (i % 7 !== 0) traits.birthYear = BIRTH_YEAR[band];
  return { key: `p${i}`, gender, band, traits, vector };
}

const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const mb = (b: number) => `${(b / 2 ** 20).toFixed(0)} MB`;

/** Samples RSS every 50 ms; `peak()` is the highest seen (and now). */
function rssWatch() {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  return { peak: () => Math.max(peak, process.memoryUsage().rss), stop: () => clearInterval(timer) };
}

async function modelPart(lean: number, label: string): Promise<void> {
  global.gc?.();
  const base = process.memoryUsage().rss;
  const watch = rssWatch();
  const random = seededRandom(lean === 0.5 ? 2 : 1);
  const truth = new Map<string, string>();
  const now = Date.now();
  let t0 = Date.now();
  const population = createPopulation(now);
  for (let i = 0; i < N; i++) {
    const p = person(i, lean, random);
    if (p.traits.gender === undefined) truth.set(p.key, p.gender);
    population.add(p.key, p.traits, p.vector);
  }
  const tookIn = Date.now() - t0;
  console.log(`  ${label}: ${fmt(N)} people taken in ${s(tookIn)}`);
  for (const trait of ['gender', 'ageBand'] as PredictedTrait[]) {
    t0 = Date.now();
    const fit = (await population.fit(trait, { holdoutFraction: 0.2 }))!;
    const fitMs = Date.now() - t0;
    t0 = Date.now();
    let predicted = 0;
    let right = 0;
    let confidence = 0;
    for (const p of population.predictions(trait, fit.model)) {
      predicted++;
      confidence += p.confidence;
      if (trait === 'gender' && truth.get(p.key) === p.value) right++;
    }
    const predictMs = Date.now() - t0;
    console.log(
      `    ${trait}: fit ${s(fitMs)} (trained on ${fmt(fit.trainedOn)}, ${fit.model.features.length} features), ` +
        `holdout ${fmt(fit.holdout.size)} accuracy ${fit.holdout.accuracy.toFixed(3)} vs baseline ${fit.holdout.baseline.toFixed(3)}; ` +
        `predicted ${fmt(predicted)} in ${s(predictMs)}, mean confidence ${(confidence / predicted).toFixed(3)}` +
        (trait === 'gender' ? `, right for ${((100 * right) / predicted).toFixed(1)} %` : ''),
    );
  }
  watch.stop();
  console.log(`    peak RSS ${mb(watch.peak())} (process before: ${mb(base)})`);
}

async function storePart(): Promise<void> {
  loadDefaultEnv();
  const id = testId();
  const env = {
    ...process.env,
    PG_SCHEMA: `bench_pred_${id}`,
    REDIS_PREFIX: `bench:pred:${id}`,
    MODEL_POLL_INTERVAL_MS: '1000000',
  };
  const config = queryConfig(env);
  const pool = createPool(config.DATABASE_URL, config.PG_SCHEMA, 'bench-predicted', 4);
  const redis = createRedis(config, 'bench-predicted');
  const log = createLogger('bench-predicted', 'silent');
  const k = keyLayout(config.REDIS_PREFIX);
  const decay = decayParams(config.DECAY_LANDMARK, config.DECAY_HALF_LIFE_DAYS);
  const now = Date.now();
  const forward = 2 ** ((now - decay.landmarkMs) / decay.halfLifeMs);
  try {
    await migrate(pool, config.PG_SCHEMA);
    const random = seededRandom(3);
    const people = Array.from({ length: STORE_N }, (_, i) => person(i, LEAN, random));
    for (let a = 0; a < people.length; a += 5000) {
      const page = people.slice(a, a + 5000);
      await pool.query(
        `INSERT INTO people (profile_key, first_seen_at, last_active_at, stage_evaluated_at, traits)
         SELECT k, $2, $2, $2, t FROM unnest($1::text[], $3::jsonb[]) AS w(k, t)`,
        [page.map((p) => p.key), new Date(now).toISOString(), page.map((p) => JSON.stringify(p.traits))],
      );
      const pipe = redis.pipeline();
      // stored forward-decayed scores whose value now is the vector's component
      for (const p of page)
        pipe.zadd(k.interests(p.key), ...[...p.vector].flatMap(([t, v]) => [10 * Math.atanh(v / 10) * forward, t]));
      await pipe.exec();
    }
    await pool.query('ANALYZE people');
    const trainer = createModelTrainer(config, { pool, redis, log });
    const watch = rssWatch();
    const t0 = Date.now();
    const trained = await trainer.runDue();
    const ms = Date.now() - t0;
    watch.stop();
    const models = await createModelStore(pool, log).list();
    console.log(
      `  whole trainer, ${fmt(STORE_N)} people in Postgres + Redis: ${trained.join(', ')} in ${s(ms)} (${(ms / STORE_N).toFixed(3)} ms/person), peak RSS ${mb(watch.peak())}`,
    );
    for (const m of models)
      console.log(
        `    ${m.trait}: trained on ${fmt(m.trainedOn)}, holdout ${m.holdout.size} accuracy ${m.holdout.accuracy?.toFixed(3)} vs baseline ${m.holdout.baseline?.toFixed(3)}`,
      );
    const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM predicted_traits');
    console.log(`    predictions stored: ${fmt(rows[0]!.n)}`);
  } finally {
    await pool.query(`DROP SCHEMA IF EXISTS ${config.PG_SCHEMA} CASCADE`);
    for await (const batch of scanKeys(redis, `${config.REDIS_PREFIX}:*`))
      if (batch.length > 0) await redis.del(...batch);
    redis.disconnect();
    await pool.end();
  }
}

async function main(): Promise<void> {
  console.log(`bench:predicted — model at ${fmt(N)} people, whole trainer at ${fmt(STORE_N)}`);
  if (process.env.BENCH_SKIP_MODEL !== '1') {
    await modelPart(LEAN, `stream with a signal (lean ${LEAN})`);
    await modelPart(0.5, 'stream without a signal (lean 0.5)');
  }
  if (STORE_N > 0) await storePart();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
