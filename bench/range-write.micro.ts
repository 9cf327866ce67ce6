/**
 * `tsx bench/range-write.micro.ts` — one tag's index write as a scorer that is behind makes it: a tag of
 * BENCH_HOLDERS (20 000) people in score-range buckets, then BENCH_BATCHES (30) writes of 1 000 changes
 * of that tag each (`writeTagIndex`, old scores known: most entries move up, 10 % leave, 10 % arrive),
 * as one chunk's changes reach it. Prints changes/s of the writes. Run it under bench/script-latency.ts
 * to see how long each script call held Redis. BENCH_PREFIX (default `bench`); its keys are removed.
 */
import { keys, writeTagIndex, type TagChange } from '@pstream/interest-store';
import { prng } from '@pstream/testkit';
import { clearPrefix, fmt, microBenchRedis } from './redis-bench';

const HOLDERS = Number(process.env.BENCH_HOLDERS ?? 20_000);
const BATCHES = Number(process.env.BENCH_BATCHES ?? 30);
const TAG = 'category:dress';

async function main(): Promise<void> {
  const { config, redis } = microBenchRedis('bench-range-write');
  const k = keys(config.REDIS_PREFIX);
  const rand = prng(11);
  const held = new Map<string, number>();
  const change = (person: string, score: number | null): TagChange => {
    const old = held.get(person);
    if (score === null) held.delete(person);
    else held.set(person, score);
    return {
      tag: TAG,
      person,
      score: score === null ? null : String(score),
      old: old === undefined ? null : String(old),
    };
  };
  try {
    for (let i = 0; i < HOLDERS; i += 1_000)
      await writeTagIndex(
        redis,
        k,
        Array.from({ length: 1_000 }, (_, j) => change(`u-${i + j}`, 10 ** (2 + 4 * rand()))),
      );
    let next = HOLDERS;
    const started = performance.now();
    for (let b = 0; b < BATCHES; b++) {
      const people = [...held.keys()];
      const list: TagChange[] = [];
      const seen = new Set<string>();
      while (list.length < 1_000) {
        const r = rand();
        if (r < 0.1) list.push(change(`u-${next++}`, 10 ** (2 + 4 * rand())));
        else {
          const person = people[Math.floor(rand() * people.length)]!;
          if (seen.has(person)) continue;
          seen.add(person);
          list.push(change(person, r < 0.2 ? null : held.get(person)! * (1 + rand())));
        }
      }
      await writeTagIndex(redis, k, list);
    }
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `changes/s ${fmt((BATCHES * 1_000) / seconds)} (${BATCHES} writes of 1 000 changes in ${seconds.toFixed(2)} s)`,
    );
  } finally {
    await clearPrefix(redis, config.REDIS_PREFIX);
    redis.disconnect();
  }
}

void main();
