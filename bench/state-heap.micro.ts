/**
 * Microbench (not a pnpm script): what the scorer's cache of decoded person states (interest-store store.ts) costs
 * the garbage collector. Builds BENCH_PEOPLE (2 000) busy people of BENCH_PER_PERSON (400) events each within W
 * (the last 47 h: every one kept in the state's event log), packs each state and holds it decoded with its
 * replayed model, as the cache does; prints the heap the held states take a person and the time of a full
 * collection (median of 7) with them held, against the same with none. Run it as
 * `node --expose-gc --import tsx bench/state-heap.micro.ts`.
 */
import { EVENT_TYPES } from '@pstream/events';
import { decodeState, digestOf, encodeState, type Seen } from '@pstream/interest-store';
import { addEvents, emptyState, replay, replayModel, type KeyedEvent, type PersonModel } from '@pstream/scoring';
import { loadConfig, storeOptions } from '@pstream/scorer/config';
import { loadDefaultEnv } from '@pstream/testkit';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
loadDefaultEnv();
const o = storeOptions(loadConfig({ ...process.env, LOG_LEVEL: 'silent' }));
const params = { ...o.scoring, latenessMs: o.latenessMs, maxTags: o.maxTagsPerPerson };
const people = Number(process.env.BENCH_PEOPLE ?? 2000);
const perPerson = Number(process.env.BENCH_PER_PERSON ?? 400);

/** A deterministic generator (no Math.random: the same people in both trees). */
let seed = 7;
const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
const now = Date.now();

function fullGcMs(): number {
  const times: number[] = [];
  for (let i = 0; i < 7; i++) {
    const t0 = performance.now();
    gc!();
    times.push(performance.now() - t0);
  }
  return times.sort((a, b) => a - b)[3]!;
}

const emptyGc = fullGcMs();
const heap0 = process.memoryUsage().heapUsed;
const held: { state: unknown; seen: Seen; tip: PersonModel }[] = [];
let kept = 0;
for (let p = 0; p < people; p++) {
  const s = emptyState();
  const seen: Seen = new Map();
  const events: KeyedEvent[] = [];
  for (let i = 0; i < perPerson; i++) {
    const t = now - 47 * 3_600_000 + Math.floor((i / perPerson) * 47 * 3_600_000) + Math.floor(rand() * 60_000);
    const type = EVENT_TYPES[Math.floor(rand() * EVENT_TYPES.length)]!;
    const product = `product:p-${Math.floor(rand() * 300)}`;
    const tags = [`category:c${Math.floor(rand() * 20)}`, `brand:b${Math.floor(rand() * 40)}`];
    events.push(
      type === 'dwell' ? { type, key: product, tags, t, dwellMs: 1000 + i } : { type, key: product, tags, t },
    );
    seen.set(digestOf(`bench|e-${p}-${i}@u-${p}`), Math.floor(t / 1000) * 1000);
  }
  addEvents(s, events, params);
  const raw = encodeState('v', s, seen, { scores: replay(s, params), legacyUntil: -Infinity });
  const back = decodeState(raw, params);
  kept += back.state.events.length;
  held.push({ state: back.state, seen: back.seen, tip: replayModel(back.state, params) });
}
gc();
gc();
const heap = process.memoryUsage().heapUsed - heap0;
const fullGc = fullGcMs();
console.log(
  `${people} people × ${(kept / people).toFixed(0)} kept events: heap ${(heap / 1048576).toFixed(1)} MB (${(heap / people / 1024).toFixed(1)} KB a person); full GC median ${fullGc.toFixed(1)} ms held, ${emptyGc.toFixed(1)} ms empty (${held.length} held)`,
);
