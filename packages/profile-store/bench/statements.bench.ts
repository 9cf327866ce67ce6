/**
 * `pnpm bench:segmenter:statements`: where the apply's time goes, statement by statement, printed,
 * never asserted. BENCH_RUNS rounds (default 3) of BENCH_EVENTS new events of the demo's kind
 * (bench/traffic.ts, new people each round) through `store.apply`, BENCH_CHUNK (default 500) per transaction, on one
 * connection; every `client.query` of the apply is timed (wall time from the call to its answer,
 * no instrumentation inside Postgres) and summed by the statement's kind. Rounds after the first
 * are summed (the first warms the JIT and the caches) and printed in µs per event, beside the
 * CPU per event of node and of the Postgres backend (/proc). BENCH_SETUP_SQL, when set, runs in the
 * bench's schema after the migrations (e.g. `ALTER TABLE people DISABLE TRIGGER people_mix_upd`: what
 * a part costs, by taking it away; never for figures of the code as it is). BENCH_EXPLAIN=1 adds, after the
 * timed rounds, one more round whose LAST transaction's plans are printed: `EXPLAIN (ANALYZE, BUFFERS)` of
 * every statement of it and of the statements its triggers run (auto_explain, sent to this client as
 * notices); the per-node times of that round are inflated by the clock reads, so it is not timed.
 * Also printed: the people the transactions name, per event (what the people statements' cost follows).
 */
import type { TopicMessage } from '@pstream/events';
import { commonEnv, parseEnv, type PoolClient } from '@pstream/platform';
import { z } from 'zod';
import { applyTimed, benchSchema, cpuSeconds } from './apply';
import { demoTraffic } from './traffic';

const env = parseEnv(
  z.object({
    DATABASE_URL: commonEnv.DATABASE_URL,
    BENCH_RUNS: z.coerce.number().int().min(2).default(3),
    BENCH_EVENTS: z.coerce.number().int().min(1000).default(10_000),
    BENCH_CHUNK: z.coerce.number().int().min(1).max(100_000).default(500),
    BENCH_SETUP_SQL: z.string().optional(),
    BENCH_EXPLAIN: z.enum(['0', '1']).default('0'),
  }),
  process.env,
);

/** The kind of a statement of the apply path, from its text. */
function kindOf(sql: string): string {
  const s = sql.replace(/\s+/g, ' ').trim();
  const rules: [RegExp, string][] = [
    [/^(BEGIN|COMMIT|ROLLBACK)/i, '$1'],
    [/consumer_offsets/, 'positions'],
    [/INSERT INTO applied_events/, 'dedupe records (applied_events)'],
    [/suppressed_ids|erasures/, 'suppression check'],
    [/INSERT INTO people/, 'people write (+ transitions, outbox)'],
    [/identities/, 'identities'],
    [/INSERT INTO event_counts/, 'facts statement (counts, activity, follow history, purchases)'],
    [/INSERT INTO follows/, 'follows upsert'],
    [/FROM people WHERE profile_key = ANY.*FOR UPDATE/, 'people read FOR UPDATE'],
    [/FROM purchases x/, 'recent purchases'],
    [/audience_touched/, 'touched ids'],
  ];
  for (const [re, label] of rules) {
    const m = re.exec(s);
    if (m) return label.replace('$1', m[1] ?? '');
  }
  return s.slice(0, 60);
}

/**
 * How many (person, transaction) pairs the chunks of `batch` make: the apply reads and writes one `people` row (and
 * its identities, follows, recent purchases) per person a transaction names, so this, not the statements, is what
 * the per-event cost of the people statements follows when the transaction size changes.
 */
function peopleInChunks(batch: readonly TopicMessage[], chunk: number): number {
  let n = 0;
  for (let i = 0; i < batch.length; i += chunk)
    n += new Set(batch.slice(i, i + chunk).map((m) => (m as { profileKey?: string }).profileKey)).size;
  return n;
}

async function main(): Promise<void> {
  const box = await benchSchema(env.DATABASE_URL, 'stmts', 1);
  if (env.BENCH_SETUP_SQL) await box.pool.query(env.BENCH_SETUP_SQL);
  const sums = new Map<string, { ms: number; calls: number }>();
  let timing = false;
  // One connection for the whole run, never closed while idle: the timed client and the backend read stay the same.
  (box.pool as unknown as { options: { idleTimeoutMillis: number } }).options.idleTimeoutMillis = 0;
  const client: PoolClient = await box.pool.connect();
  const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
  (client as unknown as { query: (...args: unknown[]) => Promise<unknown> }).query = async (...args: unknown[]) => {
    const text = typeof args[0] === 'string' ? args[0] : ((args[0] as { text?: string }).text ?? '');
    const t0 = process.hrtime.bigint();
    try {
      return await query(...args);
    } finally {
      if (timing) {
        const k = kindOf(text);
        const s = sums.get(k) ?? { ms: 0, calls: 0 };
        s.ms += Number(process.hrtime.bigint() - t0) / 1e6;
        s.calls++;
        sums.set(k, s);
      }
    }
  };
  /** With BENCH_EXPLAIN: the plans of the current transaction (a `BEGIN` starts a new list). */
  let plans: string[] = [];
  client.on('notice', (n) => {
    if (/^duration: /.test(n.message ?? '')) plans.push(n.message!);
  });
  const query2 = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
  (client as unknown as { query: (...args: unknown[]) => Promise<unknown> }).query = (...args: unknown[]) => {
    if (args[0] === 'BEGIN') plans = [];
    return query2(...args);
  };
  client.release();
  try {
    const nowMs = Date.now();
    let first = 0;
    let timed = 0;
    let personRows = 0;
    const cpu = { node: 0, pg: 0 };
    for (let r = 0; r < env.BENCH_RUNS; r++) {
      const events: TopicMessage[] = [];
      for (const block of demoTraffic({ people: Math.ceil(env.BENCH_EVENTS / 10), first, nowMs, seed: r + 1 }))
        events.push(...block);
      first += Math.ceil(env.BENCH_EVENTS / 10);
      const batch = events.slice(0, env.BENCH_EVENTS);
      if (r > 0) personRows += peopleInChunks(batch, env.BENCH_CHUNK);
      timing = r > 0;
      const before = cpuSeconds(pid);
      const seconds = await applyTimed(box.store, batch, nowMs, `round-${r}`, env.BENCH_CHUNK);
      const after = cpuSeconds(pid);
      const per = (s: number) => ((s * 1e6) / batch.length).toFixed(1);
      console.log(
        `round ${r + 1}: ${Math.round(batch.length / seconds)} events/s; CPU per event node ${per(after.node - before.node)} + Postgres ${after.pg === null || before.pg === null ? '?' : per(after.pg - before.pg)} µs`,
      );
      if (r > 0) {
        timed += batch.length;
        cpu.node += after.node - before.node;
        cpu.pg += (after.pg ?? 0) - (before.pg ?? 0);
      }
    }
    const us = (ms: number) => ((ms * 1000) / timed).toFixed(1);
    let total = 0;
    console.log(`\nstatement wall time, rounds 2–${env.BENCH_RUNS} (${timed} events), µs per event:`);
    for (const [k, s] of [...sums].sort((a, b) => b[1].ms - a[1].ms)) {
      total += s.ms;
      console.log(`  ${us(s.ms).padStart(6)}  ${k} (${s.calls} calls)`);
    }
    console.log(`  ${us(total).padStart(6)}  sum`);
    console.log(`CPU per event, same rounds: node ${us(cpu.node * 1000)} µs, Postgres ${us(cpu.pg * 1000)} µs`);
    console.log(
      `people a transaction names, per event: ${(personRows / timed).toFixed(3)} (each costs a people row read and written, whatever its events)`,
    );
    if (env.BENCH_EXPLAIN === '1') {
      timing = false;
      // Session settings of the one connection: every statement planned with its actual rows and buffers.
      await box.pool.query(
        `LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0; SET auto_explain.log_analyze = on;
         SET auto_explain.log_buffers = on; SET auto_explain.log_nested_statements = on;
         SET auto_explain.log_level = notice; SET client_min_messages = notice`,
      );
      const events: TopicMessage[] = [];
      for (const block of demoTraffic({ people: Math.ceil(env.BENCH_EVENTS / 10), first, nowMs, seed: 99 }))
        events.push(...block);
      await applyTimed(box.store, events.slice(0, env.BENCH_EVENTS), nowMs, 'explain', env.BENCH_CHUNK);
      await box.pool.query('SET auto_explain.log_min_duration = -1');
      console.log(`\nplans of the last transaction (${env.BENCH_CHUNK} events):`);
      for (const p of plans) console.log(`${p}\n`);
    }
  } finally {
    await box.drop();
  }
}

void main();
