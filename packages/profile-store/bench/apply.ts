import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import type { TopicMessage } from '@pstream/events';
import { DEFAULT_RULES } from '@pstream/lifecycle';
import { closePool, createLogger, createPool, type Pool } from '@pstream/platform';
import { from as copyFrom } from 'pg-copy-streams';
import { createConverter, createSegmentStore, migrate, type SegmentStore } from '../src';
import { demoTraffic } from './traffic';

export const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * Events in one segmenter transaction while its group is behind: a fetch's partition batches are
 * applied together (SEGMENTER_PARTITIONS_CONCURRENTLY 12), one CONSUMER_CHUNK_SIZE (500) chunk of each
 * partition a transaction, and a backlogged partition's batch (kafkajs's 1 MB a partition) holds more
 * than 500, so a transaction gets 10–12 chunks: 5 000 at the median (BENCHMARKS.md "Transaction size").
 */
export const BEHIND_CHUNK = 5_000;

/** A throwaway schema with the segmenter's tables, dropped by `drop`. */
export async function benchSchema(databaseUrl: string, name: string, connections = 4) {
  const schema = `bench_${name}_${randomBytes(4).toString('hex')}`;
  const pool = createPool(databaseUrl, schema, `bench-${name}`, connections);
  await migrate(pool, schema);
  const store = createSegmentStore({
    pool,
    rules: DEFAULT_RULES,
    convert: createConverter('CNY', new Map()),
    log: createLogger('bench', 'warn'),
  });
  return {
    schema,
    pool,
    store,
    async drop() {
      await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await closePool(pool);
    },
  };
}

/** Applies `events` through the segmenter's apply path, `chunk` per transaction; returns seconds. */
export async function applyTimed(
  store: SegmentStore,
  events: readonly TopicMessage[],
  nowMs: number,
  topic: string,
  chunk = 500,
): Promise<number> {
  const started = process.hrtime.bigint();
  for (let i = 0; i < events.length; i += chunk) {
    const part = events.slice(i, i + chunk).map((value, j) => ({ value, offset: String(i + j) }));
    await store.apply(part, { groupId: 'bench', topic, partition: 0, lastOffset: String(i + part.length - 1) }, nowMs);
  }
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/**
 * The raw limit: one narrow row per event (event id, profile key, event time) COPYed into a
 * table without indexes, `chunk` rows per transaction like the apply path; returns seconds.
 */
export async function copyTimed(pool: Pool, events: readonly TopicMessage[], chunk = 500): Promise<number> {
  await pool.query(
    'CREATE TABLE IF NOT EXISTS raw_copy (event_id text NOT NULL, profile_key text NOT NULL, occurred_at timestamptz NOT NULL)',
  );
  const client = await pool.connect();
  const started = process.hrtime.bigint();
  try {
    for (let i = 0; i < events.length; i += chunk) {
      const text = events
        .slice(i, i + chunk)
        .map((m) => `${m.eventId}\t${m.profileKey}\t${m.occurredAt}\n`)
        .join('');
      await client.query('BEGIN');
      await pipeline(
        Readable.from([text]),
        client.query(copyFrom('COPY raw_copy (event_id, profile_key, occurred_at) FROM STDIN')),
      );
      await client.query('COMMIT');
    }
  } finally {
    client.release();
  }
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/**
 * CPU seconds used so far by this process and by the Postgres backend serving `pid` (from
 * /proc, so only when Postgres runs on this machine; null otherwise). Unlike events/s on a
 * shared, loaded machine, CPU per event does not depend on what else is running.
 */
export function cpuSeconds(pid: number | null): { node: number; pg: number | null } {
  const u = process.cpuUsage();
  let pg: number | null = null;
  try {
    if (pid !== null) {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      pg = (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in USER_HZ (100/s)
    }
  } catch {
    pg = null;
  }
  return { node: (u.user + u.system) / 1e6, pg };
}

/** Runs `fn` and returns its wall seconds and the CPU microseconds per event it used in node and in Postgres. */
async function measured(pid: number | null, events: number, fn: () => Promise<number>): Promise<Side> {
  const before = cpuSeconds(pid);
  const seconds = await fn();
  const after = cpuSeconds(pid);
  const per = (s: number) => (s * 1e6) / events;
  return {
    rate: events / seconds,
    nodeUs: per(after.node - before.node),
    pgUs: after.pg === null || before.pg === null ? null : per(after.pg - before.pg),
  };
}

/** One side of a round: events/s, and CPU µs per event in node and in the Postgres backend. */
export type Side = { rate: number; nodeUs: number; pgUs: number | null };

export type ApplyFigures = {
  /** Each round, ours and the raw COPY, in the order run. */
  rounds: { ours: Side; copy: Side }[];
  /** Medians of events/s. */
  ours: number;
  copy: number;
  /** median of ours / median of the raw COPY (events/s). */
  ratio: number;
  /**
   * The same ratio in CPU: COPY's CPU per event (node + Postgres) over ours, medians — what the
   * ratio would be on a machine doing nothing else; null when Postgres's CPU cannot be read.
   */
  cpuRatio: number | null;
};

/**
 * Segmenter apply throughput against the raw limit, alternating in the same run: each round
 * applies `events` new events of the demo's kind (new people each round) through the apply path,
 * then COPYs the same number of narrow rows, both `chunk` events a transaction (default 500, one
 * partition's chunk; a segmenter that is behind applies a whole fetch in one transaction, see
 * BEHIND_CHUNK). Medians over `rounds`.
 */
export async function runSegmenterApply(opts: {
  databaseUrl: string;
  rounds?: number;
  events?: number;
  chunk?: number;
  print?: (line: string) => void;
}): Promise<ApplyFigures> {
  const rounds = opts.rounds ?? 5;
  const n = opts.events ?? 20_000;
  const chunk = opts.chunk ?? 500;
  const print = opts.print ?? (() => undefined);
  // One connection, so one Postgres backend does all the work and its CPU can be read.
  const box = await benchSchema(opts.databaseUrl, 'apply', 1);
  try {
    const pid = (await box.pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const nowMs = Date.now();
    const figures: ApplyFigures['rounds'] = [];
    let first = 0;
    for (let r = 0; r < rounds; r++) {
      const events: TopicMessage[] = [];
      for (const block of demoTraffic({ people: Math.ceil(n / 10), first, nowMs, seed: r + 1 })) events.push(...block);
      first += Math.ceil(n / 10);
      const batch = events.slice(0, n);
      const ours = await measured(pid, batch.length, () => applyTimed(box.store, batch, nowMs, `round-${r}`, chunk));
      const copy = await measured(pid, batch.length, () => copyTimed(box.pool, batch, chunk));
      figures.push({ ours, copy });
      const cpu = (x: Side) => `${Math.round(x.nodeUs)} + ${x.pgUs === null ? '?' : Math.round(x.pgUs)} µs`;
      print(
        `round ${r + 1} (${chunk} a transaction): apply ${Math.round(ours.rate)} events/s, raw COPY ${Math.round(copy.rate)} rows/s, ratio ${(ours.rate / copy.rate).toFixed(3)}; ` +
          `CPU per event (node + Postgres) ${cpu(ours)} vs ${cpu(copy)}`,
      );
    }
    const ours = median(figures.map((f) => f.ours.rate));
    const copy = median(figures.map((f) => f.copy.rate));
    const total = (x: Side) => (x.pgUs === null ? null : x.nodeUs + x.pgUs);
    const cpuRatio = figures.every((f) => total(f.ours) !== null && total(f.copy) !== null)
      ? median(figures.map((f) => total(f.copy)!)) / median(figures.map((f) => total(f.ours)!))
      : null;
    return { rounds: figures, ours, copy, ratio: ours / copy, cpuRatio };
  } finally {
    await box.drop();
  }
}
