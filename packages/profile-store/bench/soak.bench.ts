/**
 * `pnpm bench:soak`: does the segmenter's Postgres write path keep its rate as the rows it wrote
 * pile up? Figures for BENCHMARKS.md, printed, never asserted.
 *
 * On an EXISTING database and schema (DATABASE_URL, PG_SCHEMA; migrated first, never dropped, so a
 * second run starts on top of the first's rows), events of many distinct people are offered at a
 * fixed rate for a fixed time and applied as the segmenter applies them: 500 per transaction through
 * the store's apply path, the touched ids recorded for the audience sweep, and beside it, on their
 * own connections, what the segmenter runs in the background — the outbox relay (rows deleted once
 * "sent"; nothing goes to Kafka here) and every SOAK_SWEEP_SECONDS the lifecycle sweep, the
 * forgetting of old touched ids and the retention pass. Every SOAK_REPORT_SECONDS it prints
 *   - applied events/s in the window, and the apply capacity: events per second spent applying
 *     (what the path could take; it falls as the write path slows, even while the offered rate holds),
 *   - the CPU per event of the apply (node plus the apply connection's Postgres backend, from
 *     /proc): on a shared machine events/s swing with the load, the CPU an event costs much less,
 *   - how far behind the schedule the applier is (events),
 *   - live and dead rows and total size of the tables that grow.
 * At the end: the first and last windows' figures and their ratios (the aim: the last within 10 %
 * of the first). Autovacuum is reported, not changed: run it on a server with autovacuum off to see
 * the write path on its own.
 *
 * Options (env): SOAK_SECONDS (1800), SOAK_RATE (events/s offered, 2000), SOAK_PEOPLE (distinct
 * people, 50000), SOAK_REPORT_SECONDS (30), SOAK_SWEEP_SECONDS (60), SOAK_SEED (1).
 */
import { randomBytes } from 'node:crypto';
import type { TopicMessage } from '@pstream/events';
import { DEFAULT_RULES } from '@pstream/lifecycle';
import { closePool, commonEnv, createLogger, createPool, envInt, parseEnv } from '@pstream/platform';
import { z } from 'zod';
import { createAudienceStore, createConverter, createSegmentStore, drainOutboxOnce, migrate } from '../src';
import { cpuSeconds } from './apply';
import { prng } from './traffic';

const env = parseEnv(
  z.object({
    DATABASE_URL: commonEnv.DATABASE_URL,
    PG_SCHEMA: commonEnv.PG_SCHEMA,
    SOAK_SECONDS: envInt(1800, 10),
    SOAK_RATE: envInt(2000, 1),
    SOAK_PEOPLE: envInt(50_000, 1),
    SOAK_REPORT_SECONDS: envInt(30, 1),
    SOAK_SWEEP_SECONDS: envInt(60, 1),
    SOAK_SEED: envInt(1, 0),
  }),
  process.env,
);

const CHUNK = 500;
const CATEGORIES = ['dress', 'lipstick', 'sneakers', 'phone', 'snacks', 'tea', 'baby'];
/** Share of each event type: mostly browsing, some social, a few purchases and follows. */
const TYPES: [string, number][] = [
  ['click', 0.4],
  ['dwell', 0.3],
  ['like', 0.1],
  ['favorite', 0.06],
  ['share', 0.03],
  ['comment', 0.04],
  ['purchase', 0.04],
  ['follow', 0.02],
  ['unfollow', 0.01],
];

/**
 * `n` events of people drawn uniformly from `people` (so a chunk is mostly distinct people), at
 * about `nowMs` (a few minutes of jitter), each with a category and a brand tag; every fifth person
 * anonymous. Event ids are unique to the run.
 */
function* steadyTraffic(people: number, seed: number, run: string): Generator<(nowMs: number) => TopicMessage> {
  const rand = prng(seed);
  for (let seq = 0; ; seq++) {
    const i = Math.floor(rand() * people);
    const r = rand();
    let acc = 0;
    const type = TYPES.find(([, p]) => (acc += p) > r)?.[0] ?? 'click';
    const category = CATEGORIES[i % CATEGORIES.length]!;
    const follow = type === 'follow' || type === 'unfollow';
    const target = follow
      ? { type: 'shop', id: `s-${category}` }
      : { type: 'product', id: `p-${category}-${Math.floor(rand() * 35)}` };
    const tags = [`category:${category}`, `brand:${category}-${Math.floor(rand() * 3)}`];
    const id = i % 5 === 4 ? `soak-dev-${i}` : `soak-u-${i}`;
    const extra =
      type === 'purchase'
        ? { amount: 19 + Math.floor(rand() * 980), currency: 'CNY' }
        : type === 'dwell'
          ? { dwellMs: 3_000 + Math.floor(rand() * 117_000) }
          : {};
    const jitter = Math.floor(rand() * 300_000);
    yield (nowMs: number) => {
      const at = new Date(nowMs - jitter).toISOString();
      const who = i % 5 === 4 ? { anonymousId: id } : { userId: id };
      return {
        v: 1,
        kind: 'event',
        eventId: `${run}-${seq}`,
        source: 'soak',
        type,
        ...who,
        profileKey: id,
        occurredAt: at,
        receivedAt: at,
        target,
        tags,
        ...extra,
      } as TopicMessage;
    };
  }
}

type TableStat = { relname: string; n_live_tup: string; n_dead_tup: string; bytes: string };

async function main(): Promise<void> {
  const schema = env.PG_SCHEMA;
  const pool = createPool(env.DATABASE_URL, schema, 'bench-soak', 3);
  // The apply path on one connection of its own, so its Postgres backend's CPU can be read.
  const applyPool = createPool(env.DATABASE_URL, schema, 'bench-soak-apply', 1);
  const log = createLogger('soak', 'warn');
  const run = `soak-${randomBytes(3).toString('hex')}`;
  const stopAt = Date.now() + env.SOAK_SECONDS * 1000;
  let stopping = false;
  const background: Promise<unknown>[] = [];
  try {
    await migrate(pool, schema);
    const autovacuum = (await pool.query<{ autovacuum: string }>('SHOW autovacuum')).rows[0]!.autovacuum;
    console.log(
      `soak ${run}: ${env.SOAK_RATE} events/s offered for ${env.SOAK_SECONDS} s, ${env.SOAK_PEOPLE} people, schema ${schema}, autovacuum ${autovacuum}, ` +
        `people already there: ${(await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM people')).rows[0]!.n}`,
    );
    const store = createSegmentStore({ pool, rules: DEFAULT_RULES, convert: createConverter('CNY', new Map()), log });
    const audiences = createAudienceStore(pool);
    const applier = createSegmentStore({
      pool: applyPool,
      rules: DEFAULT_RULES,
      convert: createConverter('CNY', new Map()),
      log,
      touchAudiences: true,
    });
    const pid = (await applyPool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const topic = run;

    // The segmenter's background work, each on its own schedule.
    const every = (ms: number, fn: () => Promise<unknown>) =>
      background.push(
        (async () => {
          while (!stopping) {
            await new Promise((r) => setTimeout(r, ms));
            if (!stopping) await fn();
          }
        })(),
      );
    every(1000, async () => {
      while ((await drainOutboxOnce(pool, schema, 500, async () => undefined)) > 0);
    });
    every(env.SOAK_SWEEP_SECONDS * 1000, async () => {
      const nowMs = Date.now();
      await store.sweep(nowMs, 1000);
      await audiences.forgetTouched(nowMs - 120_000);
      await store.prune(nowMs, { dedupeWindowHours: 72, retentionDays: 365 });
    });

    const traffic = steadyTraffic(env.SOAK_PEOPLE, env.SOAK_SEED, run);
    const started = Date.now();
    let offset = 0;
    let window = { at: started, events: 0, busyMs: 0, cpu: cpuSeconds(pid) };
    const windows: { applied: number; capacity: number; cpuUs: number | null }[] = [];
    const stats = async () =>
      (
        await pool.query<TableStat>(
          `SELECT relname, n_live_tup, n_dead_tup, pg_total_relation_size(relid) AS bytes FROM pg_stat_user_tables
           WHERE schemaname = $1 AND (pg_total_relation_size(relid) > 1048576 OR n_dead_tup > 1000) ORDER BY bytes DESC`,
          [schema],
        )
      ).rows;
    const report = async () => {
      const now = Date.now();
      const seconds = (now - window.at) / 1000;
      const applied = window.events / seconds;
      const capacity = window.busyMs > 0 ? (window.events / window.busyMs) * 1000 : 0;
      const cpu = cpuSeconds(pid);
      // CPU per event of the apply (node + its Postgres backend): unlike events/s, it does not move
      // with whatever else the machine runs. Null when Postgres is not on this machine.
      const cpuUs =
        cpu.pg === null || window.cpu.pg === null
          ? null
          : ((cpu.node - window.cpu.node + cpu.pg - window.cpu.pg) * 1e6) / window.events;
      const pgUs = cpu.pg === null || window.cpu.pg === null ? null : ((cpu.pg - window.cpu.pg) * 1e6) / window.events;
      windows.push({ applied, capacity, cpuUs });
      const behind = Math.max(0, Math.round(((now - started) / 1000) * env.SOAK_RATE - offset));
      const tables = (await stats())
        .map((t) => `${t.relname} ${t.n_live_tup}/${t.n_dead_tup} ${(Number(t.bytes) / 1048576).toFixed(0)}MB`)
        .join(', ');
      console.log(
        `${String(Math.round((now - started) / 1000)).padStart(5)} s: applied ${Math.round(applied)} events/s, capacity ${Math.round(capacity)} events/s, ` +
          `CPU ${cpuUs === null ? '?' : Math.round(cpuUs)} µs/event (of it Postgres ${pgUs === null ? '?' : Math.round(pgUs)}), ` +
          `behind ${behind}; live/dead rows, size: ${tables}`,
      );
      window = { at: now, events: 0, busyMs: 0, cpu };
    };
    while (Date.now() < stopAt) {
      // Paced: chunk k is due at k·CHUNK/rate seconds; behind schedule, chunks follow back to back.
      const due = started + (offset / env.SOAK_RATE) * 1000;
      if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
      const nowMs = Date.now();
      const messages = Array.from({ length: CHUNK }, (_, j) => ({
        value: traffic.next().value!(nowMs),
        offset: String(offset + j),
      }));
      const t0 = performance.now();
      await applier.apply(
        messages,
        { groupId: 'soak', topic, partition: 0, lastOffset: String(offset + CHUNK - 1) },
        nowMs,
      );
      window.busyMs += performance.now() - t0;
      window.events += CHUNK;
      offset += CHUNK;
      if (Date.now() - window.at >= env.SOAK_REPORT_SECONDS * 1000) await report();
    }
    stopping = true;
    await Promise.all(background);
    const first = windows[0];
    const last = windows.at(-1);
    if (first && last) {
      const cpuRatio = first.cpuUs !== null && last.cpuUs !== null ? (first.cpuUs / last.cpuUs).toFixed(3) : 'n/a';
      console.log(
        `\nfirst window: applied ${Math.round(first.applied)} events/s, capacity ${Math.round(first.capacity)}, CPU ${Math.round(first.cpuUs ?? NaN)} µs/event; ` +
          `last: applied ${Math.round(last.applied)}, capacity ${Math.round(last.capacity)}, CPU ${Math.round(last.cpuUs ?? NaN)} µs/event; ` +
          `last ÷ first: applied ${(last.applied / first.applied).toFixed(3)}, capacity ${(last.capacity / first.capacity).toFixed(3)}, ` +
          `in CPU per event (first ÷ last) ${cpuRatio} (${offset} events in ${((Date.now() - started) / 1000).toFixed(0)} s)`,
      );
    }
    console.log(
      `tables at the end (live/dead rows, size): ${(await stats()).map((t) => `${t.relname} ${t.n_live_tup}/${t.n_dead_tup} ${(Number(t.bytes) / 1048576).toFixed(1)}MB`).join(', ')}`,
    );
  } finally {
    stopping = true;
    await Promise.allSettled(background);
    await closePool(pool);
    await closePool(applyPool);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
