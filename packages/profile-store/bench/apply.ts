import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import type { TopicMessage } from '@pstream/events';
import { DEFAULT_RULES } from '@pstream/lifecycle';
import { closePool, createLogger, createPool, type Pool } from '@pstream/platform';
import { from as copyFrom } from 'pg-copy-streams';
import { createConverter, createSegmentStore, migrate, type SegmentStore } from '../src';
import { demoTraffic } from './traffic';

export const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** A throwaway schema with the segmenter's tables, dropped by `drop`. */
export async function benchSchema(databaseUrl: string, name: string) {
  const schema = `bench_${name}_${randomBytes(4).toString('hex')}`;
  const pool = createPool(databaseUrl, schema, `bench-${name}`, 4);
  await migrate(pool, schema);
  const store = createSegmentStore({ pool, rules: DEFAULT_RULES, convert: createConverter('CNY', new Map()), log: createLogger('bench', 'warn') });
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
export async function applyTimed(store: SegmentStore, events: readonly TopicMessage[], nowMs: number, topic: string, chunk = 500): Promise<number> {
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
  await pool.query('CREATE TABLE IF NOT EXISTS raw_copy (event_id text NOT NULL, profile_key text NOT NULL, occurred_at timestamptz NOT NULL)');
  const client = await pool.connect();
  const started = process.hrtime.bigint();
  try {
    for (let i = 0; i < events.length; i += chunk) {
      const text = events
        .slice(i, i + chunk)
        .map((m) => `${m.eventId}\t${m.profileKey}\t${m.occurredAt}\n`)
        .join('');
      await client.query('BEGIN');
      await pipeline(Readable.from([text]), client.query(copyFrom('COPY raw_copy (event_id, profile_key, occurred_at) FROM STDIN')));
      await client.query('COMMIT');
    }
  } finally {
    client.release();
  }
  return Number(process.hrtime.bigint() - started) / 1e9;
}

export type ApplyFigures = {
  /** events/s of each round, ours and the raw COPY, in the order run. */
  rounds: { ours: number; copy: number }[];
  ours: number;
  copy: number;
  /** median of ours / median of the raw COPY. */
  ratio: number;
};

/**
 * Segmenter apply throughput against the raw limit, alternating in the same run: each round
 * applies `events` new events of the demo's kind (new people each round) through the apply path,
 * then COPYs the same number of narrow rows. Medians over `rounds`.
 */
export async function runSegmenterApply(opts: { databaseUrl: string; rounds?: number; events?: number; print?: (line: string) => void }): Promise<ApplyFigures> {
  const rounds = opts.rounds ?? 5;
  const n = opts.events ?? 20_000;
  const print = opts.print ?? (() => undefined);
  const box = await benchSchema(opts.databaseUrl, 'apply');
  try {
    const nowMs = Date.now();
    const figures: ApplyFigures['rounds'] = [];
    let first = 0;
    for (let r = 0; r < rounds; r++) {
      const events: TopicMessage[] = [];
      for (const block of demoTraffic({ people: Math.ceil(n / 10), first, nowMs, seed: r + 1 })) events.push(...block);
      first += Math.ceil(n / 10);
      const batch = events.slice(0, n);
      const ours = batch.length / (await applyTimed(box.store, batch, nowMs, `round-${r}`));
      const copy = batch.length / (await copyTimed(box.pool, batch));
      figures.push({ ours, copy });
      print(`round ${r + 1}: apply ${Math.round(ours)} events/s, raw COPY ${Math.round(copy)} rows/s, ratio ${(ours / copy).toFixed(3)}`);
    }
    const ours = median(figures.map((f) => f.ours));
    const copy = median(figures.map((f) => f.copy));
    return { rounds: figures, ours, copy, ratio: ours / copy };
  } finally {
    await box.drop();
  }
}
