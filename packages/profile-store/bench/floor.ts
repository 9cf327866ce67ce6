/**
 * The write floor of the segmenter's apply (`pnpm bench:segmenter:floor`, and a row of `pnpm bench`): the
 * least any apply that keeps today's data model must write, against the raw limit of the segmenter's aim.
 *
 * Every new event leaves two rows whatever else the apply does: its dedupe record (`applied_events`,
 * the ≥ 24 h exactly-once window of docs/model.md) and its daily activity row (`activity`, what every
 * audience leaf on behaviour, `/explain`, followers and the tag insight read, with the indexes those
 * readers need at 1 M people). Each round takes the demo's traffic (traffic.ts, new people each round),
 * folds it with the segmenter's own fold, and alternates three writes of the same events, `chunk` a
 * transaction, one connection each:
 *   - raw:      COPY of one narrow row per event into a table without indexes (apply.ts copyTimed, the
 *               denominator of the segmenter's aim);
 *   - floor:    COPY of exactly those two rows into the real tables, indexes and all — no upserts, no
 *               people, counts, stages, identities or positions: a lower bound for the apply;
 *   - no-index: the same two COPYs in a second schema without `activity`'s secondary indexes: what the
 *               rows cost without the read side's indexes;
 *   - activity: the activity rows alone into the real table — what would be left if the dedupe record
 *               wrote nothing of its own (e.g. folded into the activity row).
 * The first round warms up and is left out of the medians.
 */
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { dedupeId, type ProfileEvent, type TopicMessage } from '@pstream/events';
import type { Pool, PoolClient } from '@pstream/platform';
import { from as copyFrom } from 'pg-copy-streams';
import { createConverter, foldEvents } from '../src';
import { benchSchema, copyTimed, cpuSeconds, median } from './apply';
import { demoTraffic } from './traffic';

/** A value in COPY's text format: backslash, tab, newline and carriage return escaped; null as \N. */
const cell = (v: string | number | null) =>
  v === null
    ? '\\N'
    : String(v).replace(/[\\\t\n\r]/g, (c) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' })[c]!);
const line = (cells: (string | number | null)[]) => `${cells.map(cell).join('\t')}\n`;

/** COPYs `text` into `table (columns)` on `client`, inside its transaction. */
const copyInto = (client: PoolClient, table: string, columns: string, text: string) =>
  pipeline(Readable.from([text]), client.query(copyFrom(`COPY ${table} (${columns}) FROM STDIN`)));

/**
 * The two rows of each event of `events` (only the activity row without `dedupe`), COPYed `chunk` events a
 * transaction; returns seconds.
 */
async function floorTimed(pool: Pool, events: readonly ProfileEvent[], chunk: number, dedupe = true): Promise<number> {
  const convert = createConverter('CNY', new Map());
  const client = await pool.connect();
  const started = process.hrtime.bigint();
  try {
    for (let i = 0; i < events.length; i += chunk) {
      const part = events.slice(i, i + chunk);
      const records = dedupe ? part.map((e) => line([e.source, dedupeId(e), e.receivedAt])).join('') : '';
      const activity = foldEvents(
        part.map((event) => ({ key: event.profileKey, event })),
        convert,
      )
        .activity.map((a) => line([a.key, a.day, a.type, a.targetType, a.targetId, a.tags, a.n]))
        .join('');
      await client.query('BEGIN');
      if (dedupe) await copyInto(client, 'applied_events', 'source, event_id, received_at', records);
      await copyInto(client, 'activity', 'profile_key, day, type, target_type, target_id, tags, n', activity);
      await client.query('COMMIT');
    }
  } finally {
    client.release();
  }
  return Number(process.hrtime.bigint() - started) / 1e9;
}

async function measured(pool: Pool, n: number, fn: () => Promise<number>): Promise<FloorSide> {
  const pid = (await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  const before = cpuSeconds(pid);
  const seconds = await fn();
  const after = cpuSeconds(pid);
  const cpuUs =
    before.pg === null || after.pg === null ? null : ((after.node - before.node + after.pg - before.pg) * 1e6) / n;
  return { rate: n / seconds, cpuUs };
}

/** One write's events/s and CPU µs per event (node + its backend; null where /proc cannot be read). */
export type FloorSide = { rate: number; cpuUs: number | null };
export type FloorFigures = {
  /** Medians over the rounds after the first: each write's share of the raw COPY's events/s, and CPU per event. */
  floorRatio: number;
  bareRatio: number;
  activityRatio: number;
  raw: FloorSide;
  floor: FloorSide;
  bare: FloorSide;
  /** The activity rows alone, indexes and all (a dedupe that wrote nothing of its own). */
  activity: FloorSide;
};

export async function runWriteFloor(opts: {
  databaseUrl: string;
  rounds: number;
  events: number;
  chunk: number;
  print?: (line: string) => void;
}): Promise<FloorFigures> {
  const print = opts.print ?? (() => undefined);
  const withIndexes = await benchSchema(opts.databaseUrl, 'floor', 1);
  const bare = await benchSchema(opts.databaseUrl, 'floorbare', 1);
  try {
    const { rows } = await bare.pool.query<{ name: string }>(
      `SELECT indexrelid::regclass::text AS name FROM pg_index
       WHERE indrelid = 'activity'::regclass AND NOT indisprimary AND NOT indisunique`,
    );
    for (const { name } of rows) await bare.pool.query(`DROP INDEX ${name}`);
    print(
      `write floor: ${opts.events} events a round, ${opts.chunk} a transaction, ${opts.rounds} rounds (first left out); ` +
        `dropped on the no-index side: ${rows.map((r) => r.name).join(', ')}`,
    );
    const nowMs = Date.now();
    const figures: { raw: FloorSide; floor: FloorSide; bare: FloorSide; activity: FloorSide }[] = [];
    let first = 0;
    for (let r = 0; r < opts.rounds; r++) {
      const messages: TopicMessage[] = [];
      for (const block of demoTraffic({ people: Math.ceil(opts.events / 10), first, nowMs, seed: r + 1 }))
        messages.push(...block);
      first += Math.ceil(opts.events / 10);
      const events = messages.filter((m): m is ProfileEvent => m.kind === 'event').slice(0, opts.events);
      const raw = await measured(withIndexes.pool, events.length, () =>
        copyTimed(withIndexes.pool, events, opts.chunk),
      );
      const floor = await measured(withIndexes.pool, events.length, () =>
        floorTimed(withIndexes.pool, events, opts.chunk),
      );
      const noIndex = await measured(bare.pool, events.length, () => floorTimed(bare.pool, events, opts.chunk));
      const activity = await measured(withIndexes.pool, events.length, () =>
        floorTimed(withIndexes.pool, events, opts.chunk, false),
      );
      const show = (s: FloorSide) => `${Math.round(s.rate)}/s (${s.cpuUs === null ? '?' : s.cpuUs.toFixed(1)} µs CPU)`;
      print(
        `round ${r + 1}: raw COPY ${show(raw)}, floor ${show(floor)} = ${(floor.rate / raw.rate).toFixed(3)} of raw, ` +
          `without activity's secondary indexes ${show(noIndex)} = ${(noIndex.rate / raw.rate).toFixed(3)}, ` +
          `activity rows alone ${show(activity)} = ${(activity.rate / raw.rate).toFixed(3)}`,
      );
      if (r > 0 || opts.rounds === 1) figures.push({ raw, floor, bare: noIndex, activity });
    }
    const side = (k: 'raw' | 'floor' | 'bare' | 'activity'): FloorSide => {
      const cpu = figures.map((f) => f[k].cpuUs);
      return {
        rate: median(figures.map((f) => f[k].rate)),
        cpuUs: cpu.every((x) => x !== null) ? median(cpu as number[]) : null,
      };
    };
    return {
      floorRatio: median(figures.map((f) => f.floor.rate / f.raw.rate)),
      bareRatio: median(figures.map((f) => f.bare.rate / f.raw.rate)),
      activityRatio: median(figures.map((f) => f.activity.rate / f.raw.rate)),
      raw: side('raw'),
      floor: side('floor'),
      bare: side('bare'),
      activity: side('activity'),
    };
  } finally {
    await withIndexes.drop();
    await bare.drop();
  }
}
