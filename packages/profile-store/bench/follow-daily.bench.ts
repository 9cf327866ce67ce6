/**
 * `pnpm bench:follow-daily`: what counting changes of the follow set (migration 020) costs the
 * segmenter's apply path, printed, never asserted. The same follow-heavy stream — every event a
 * follow or an unfollow, 2 000 people × 10 shops, event times spread over 60 days and arriving out
 * of order — is applied in 500-event chunks to two schemas in alternating rounds: one migrated up
 * to 008 (follow_daily counted events) and one with 020 (it recounts each touched person × target
 * history). Medians of the rounds in events/s, and their ratio. BENCH_RUNS (default 5),
 * BENCH_EVENTS (events per round, default 20000).
 */
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TopicMessage } from '@pstream/events';
import { DAY_MS, DEFAULT_RULES } from '@pstream/lifecycle';
import { closePool, commonEnv, createLogger, createPool, parseEnv } from '@pstream/platform';
import { z } from 'zod';
import { createConverter, createSegmentStore, migrate, MIGRATIONS_DIR } from '../src';
import { applyTimed, median } from './apply';
import { prng } from './traffic';

const env = parseEnv(
  z.object({
    DATABASE_URL: commonEnv.DATABASE_URL,
    BENCH_RUNS: z.coerce.number().int().min(1).default(5),
    BENCH_EVENTS: z.coerce.number().int().min(1000).default(20_000),
  }),
  process.env,
);

/** Follows and unfollows of 2 000 people on 10 shops, times spread over 60 days in random order. */
function followStream(round: number, events: number, nowMs: number): TopicMessage[] {
  const rand = prng(100 + round);
  return Array.from({ length: events }, (_, i) => {
    const at = new Date(nowMs - rand() * 60 * DAY_MS).toISOString();
    const id = `u-${Math.floor(rand() * 2000)}`;
    return {
      v: 1,
      kind: 'event',
      eventId: `r${round}-${i}`,
      source: 'bench',
      occurredAt: at,
      receivedAt: at,
      type: rand() < 0.7 ? 'follow' : 'unfollow',
      userId: id,
      profileKey: id,
      target: { type: 'shop', id: `s-${Math.floor(rand() * 10)}` },
      tags: [],
    } as TopicMessage;
  });
}

async function main(): Promise<void> {
  const nowMs = Date.now();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'migrations-'));
  // (and 070, which touches nothing of 020's: today's apply path writes daily activity to its table)
  for (const f of await readdir(MIGRATIONS_DIR))
    if (f < '020' || f.startsWith('070_')) await cp(path.join(MIGRATIONS_DIR, f), path.join(dir, f));
  const log = createLogger('bench', 'warn');
  const sides = await Promise.all(
    (['events', 'changes'] as const).map(async (name) => {
      const schema = `bench_follow_${name}_${process.pid}`;
      const pool = createPool(env.DATABASE_URL, schema, `bench-follow-${name}`, 2);
      await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await migrate(pool, schema, name === 'events' ? dir : MIGRATIONS_DIR);
      return {
        name,
        schema,
        pool,
        store: createSegmentStore({ pool, rules: DEFAULT_RULES, convert: createConverter('CNY', new Map()), log }),
        rates: [] as number[],
      };
    }),
  );
  try {
    for (let round = 0; round < env.BENCH_RUNS; round++) {
      const stream = followStream(round, env.BENCH_EVENTS, nowMs);
      for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
        side.rates.push(stream.length / (await applyTimed(side.store, stream, nowMs, `t${round}`)));
      }
    }
    const [events, changes] = sides.map((s) => median(s.rates)) as [number, number];
    console.log(`follow-heavy apply, ${env.BENCH_RUNS} rounds of ${env.BENCH_EVENTS} events, chunks of 500`);
    console.log(`  follow_daily counting events (≤ 008):   ${events.toFixed(0)} events/s`);
    console.log(`  follow_daily counting changes (020):    ${changes.toFixed(0)} events/s`);
    console.log(`  ratio changes / events:                 ${(changes / events).toFixed(3)}`);
  } finally {
    for (const s of sides) {
      await s.pool.query(`DROP SCHEMA IF EXISTS ${s.schema} CASCADE`);
      await closePool(s.pool);
    }
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
