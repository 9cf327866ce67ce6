/**
 * Redis cost growth: fills a store with the scorer's kind of traffic (the seeded stream of the
 * scorer's tests: visits with dwell and actions, follows and unfollows, purchases, ~3 tags an
 * event, 24 events a person, people's events interleaved in chunks of 500) for each size of
 * population, then prints Redis bytes per person and per event and the store's events/s at that
 * size. `runRedisCost` returns the figures for any harness; `pnpm bench:cost:redis` prints them.
 *
 * Bytes come from `MEMORY USAGE … SAMPLES 0` (exact) of a random sample of people's keys, by key
 * kind, plus every per-tag index key divided by the people — not `INFO memory`, which other
 * clients of a shared server move. Every event of the stream is inside the dedupe window, so the
 * dedupe figure is its worst case (a person's whole history within the window).
 * BENCH_COST_MEMORY_ONLY=1 skips the ZINCRBY run (the bytes are exact whatever the load; the events/s
 * then mean nothing).
 */
import {
  createInterestStore,
  decodeState,
  emptyStateParts,
  encodeState,
  timelineParams,
  type StateParts,
} from '@pstream/interest-store';
import { scanKeys, type Redis } from '@pstream/platform';
import { storeOptions, type ScorerConfig } from '@pstream/scorer/config';
import { prepareEvent } from '@pstream/scorer/score';
import { clearPrefix, zincrbyOpsPerSec } from './redis-bench';
import { benchStream, interleave } from './scorer-throughput';

/** The per-person keys (interest-store keys.ts), by the suffix that names their kind. */
const KINDS = ['st', 'int', 'seen'] as const;

export type CostRow = {
  people: number;
  events: number;
  /** Bytes per person by key kind, and the per-tag index share. */
  perPerson: Record<(typeof KINDS)[number] | 'tagIndex', number>;
  /**
   * The state's packed bytes per person by part (before Redis' own overhead of the key), compacted; `tails`: the
   * bytes of tails appended since the last whole write (store.ts TAIL_SHARE).
   */
  stateParts: StateParts & { tails: number };
  /**
   * The per-tag index: its sorted sets (buckets), its tags' meta hashes, its entries ((person, tag) pairs), the
   * largest set, how many sets are listpacks.
   */
  tagIndex: { keys: number; metas: number; entries: number; largest: number; listpacks: number };
  totalPerPerson: number;
  perEvent: number;
  /** Store events/s over the last fifth of the fill, and ZINCRBY -P 16 ops/s right after. */
  eventsPerSec: number;
  zincrby: number;
};

export type CostOptions = { sizes: number[]; perPerson?: number; sample?: number };

async function bytesOf(redis: Redis, keys: string[]): Promise<number[]> {
  const pipeline = redis.pipeline();
  for (const key of keys) pipeline.call('MEMORY', 'USAGE', key, 'SAMPLES', '0');
  const replies = (await pipeline.exec()) ?? [];
  return replies.map(([err, v]) => {
    if (err) throw err;
    return Number(v ?? 0);
  });
}

/** Fills `prefix` with `people` people's traffic; resolves with the events and the late apply rate. */
async function fill(
  redis: Redis,
  config: ScorerConfig,
  prefix: string,
  people: number,
  perPerson: number,
  log: (line: string) => void,
): Promise<{ events: number; rate: number; keys: string[] }> {
  const options = storeOptions(config);
  const store = createInterestStore(redis, prefix, options);
  const BLOCK = 2_000; // people generated at a time (bounded memory)
  let events = 0;
  let lateEvents = 0;
  let lateMs = 0;
  const ids: string[] = [];
  for (let from = 0; from < people; from += BLOCK) {
    const n = Math.min(BLOCK, people - from);
    const { messages, people: block } = benchStream(1_000 + from / BLOCK, n * perPerson, perPerson);
    ids.push(...block);
    const prepared = interleave(messages).map((m) => prepareEvent(m, new Map()));
    const late = from + n > people * 0.8; // the blocks that reach into the last fifth
    const t0 = performance.now();
    for (let i = 0; i < prepared.length; i += 500) await store.apply(prepared.slice(i, i + 500));
    if (late) {
      lateMs += performance.now() - t0;
      lateEvents += prepared.length;
    }
    events += prepared.length;
    if ((from / BLOCK) % 10 === 9) log(`  ${from + n} of ${people} people filled`);
  }
  return { events, rate: lateEvents / (lateMs / 1000), keys: ids };
}

export async function runRedisCost(
  redis: Redis,
  config: ScorerConfig,
  options: CostOptions,
  log: (line: string) => void = () => undefined,
): Promise<CostRow[]> {
  const perPerson = options.perPerson ?? 24;
  const sampleSize = options.sample ?? 400;
  const rows: CostRow[] = [];
  for (const size of options.sizes) {
    const prefix = `${config.REDIS_PREFIX}-cost${size}`;
    const k = createInterestStore(redis, prefix, storeOptions(config)).keys;
    try {
      const { events, rate, keys: people } = await fill(redis, config, prefix, size, perPerson, log);
      // BENCH_COST_MEMORY_ONLY=1: bytes only (exact, not timed: may run outside the bench lock), no ZINCRBY run
      const zincrby =
        process.env.BENCH_COST_MEMORY_ONLY === '1'
          ? Number.NaN
          : zincrbyOpsPerSec(
              new URL(config.REDIS_URL),
              `${prefix}:raw`,
              200_000,
              config.REDIS_CLUSTER_NODES.length > 0,
            );
      await redis.unlink(`${prefix}:raw`);
      // a random sample of people (deterministic stride), every kind of key of each
      const sample = Array.from(
        { length: Math.min(sampleSize, people.length) },
        (_, i) => people[Math.floor((i * people.length) / Math.min(sampleSize, people.length))]!,
      );
      const perPersonBytes = {} as CostRow['perPerson'];
      for (const kind of KINDS) {
        const bytes = await bytesOf(
          redis,
          sample.map((id) => `${k.person(id).seen.slice(0, -'seen'.length)}${kind}`),
        );
        perPersonBytes[kind] = bytes.reduce((a, b) => a + b, 0) / sample.length;
      }
      const stateParts: CostRow['stateParts'] = { ...emptyStateParts(), tails: 0 };
      for (const id of sample) {
        const raw = await redis.getBuffer(k.person(id).state);
        if (!raw) continue;
        const { state, seen, packed, scores } = decodeState(raw, timelineParams(storeOptions(config)));
        encodeState('', state, seen, { parts: stateParts, scores });
        if (packed) stateParts.tails += packed.bytes - packed.snapshotBytes;
      }
      for (const part of Object.keys(stateParts) as (keyof CostRow['stateParts'])[]) stateParts[part] /= sample.length;
      let tagBytes = 0;
      const tagIndex = { keys: 0, metas: 0, entries: 0, largest: 0, listpacks: 0 };
      for await (const batch of scanKeys(redis, k.tagPattern)) {
        tagBytes += (await bytesOf(redis, batch)).reduce((a, b) => a + b, 0);
        const p = redis.pipeline();
        // a tag's meta hash, and in score ranges its directory and counts, beside its buckets: counted in the bytes only
        const sets = batch.filter((key) => !/:(m|rd|rc)$/.test(key));
        tagIndex.metas += batch.length - sets.length;
        for (const key of sets) p.zcard(key).object('ENCODING', key);
        const replies = (await p.exec()) ?? [];
        for (let i = 0; i + 1 < replies.length; i += 2) {
          const n = Number(replies[i]![1]);
          tagIndex.keys++;
          tagIndex.entries += n;
          tagIndex.largest = Math.max(tagIndex.largest, n);
          if (replies[i + 1]![1] === 'listpack') tagIndex.listpacks++;
        }
      }
      perPersonBytes.tagIndex = tagBytes / size;
      const totalPerPerson = Object.values(perPersonBytes).reduce((a, b) => a + b, 0);
      const row: CostRow = {
        people: size,
        events,
        perPerson: perPersonBytes,
        stateParts,
        tagIndex,
        totalPerPerson,
        perEvent: totalPerPerson / (events / size),
        eventsPerSec: rate,
        zincrby,
      };
      rows.push(row);
      const b = (x: number) => Math.round(x).toLocaleString('en-US');
      log(
        `${b(size)} people, ${b(events)} events: ${b(totalPerPerson)} B/person (state ${b(perPersonBytes.st)}, int ${b(perPersonBytes.int)}, seen ${b(perPersonBytes.seen)}, tag index ${b(perPersonBytes.tagIndex)}), ${b(row.perEvent)} B/event | store ${b(rate)} ev/s, ZINCRBY ${b(zincrby)} ops/s, ratio ${(rate / zincrby).toFixed(3)}`,
      );
      const setting =
        ((await redis.call('CONFIG', 'GET', 'zset-max-listpack-entries').catch(() => [])) as string[])[1] ?? '?';
      log(
        `  tag index: ${b(tagIndex.keys)} sorted sets (${b(tagIndex.listpacks)} listpacks, zset-max-listpack-entries ${setting}) (layout ${k.tagLayout}), ${b(tagIndex.metas)} meta/directory/count keys, ${b(tagIndex.entries)} entries (${(tagIndex.entries / size).toFixed(1)} a person, ${(tagBytes / Math.max(1, tagIndex.entries)).toFixed(1)} B each), largest ${b(tagIndex.largest)}`,
      );
      log(
        `  state by part (packed bytes a person): ${Object.entries(stateParts)
          .map(([part, bytes]) => `${part} ${b(bytes)}`)
          .join(', ')}`,
      );
    } finally {
      await clearPrefix(redis, prefix);
    }
  }
  return rows;
}
