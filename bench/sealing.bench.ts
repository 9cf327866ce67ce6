/**
 * `pnpm bench:sealing` (and the `sealing` stage of `pnpm bench`): what crypto-shredding costs
 * per event (docs/privacy.md), beside what the same code does without it, in the same run:
 *
 * - ingest: `keyring.seal` of a batch of 500 normalized events — people cached (hot), and people
 *   seen for the first time (a key made, wrapped and inserted per person, one statement per
 *   batch) — beside the JSON serialization ingest does anyway;
 * - consumers: `keyring.open` of the same batch, cached and uncached (one indexed read per
 *   batch), beside the JSON.parse they do anyway;
 * - the consume loop both consumers share (BatchConsumer, real Kafka, validation, a no-op
 *   apply): events/s over a sealed topic beside the same events in clear, rounds alternating. The
 *   sealed loop runs twice: with a fresh keyring, as a replay reads it (every one of the 10 000 ids
 *   loaded from Postgres and unwrapped once, every one of the 5 000 pairs of ids derived once: half a
 *   key and a quarter of a derivation per event), and with a keyring that already holds them (a
 *   consumer whose people are cached: what it costs live);
 * - validation (issue 22): zod's `topicMessageSchema.safeParse` per message beside the compiled
 *   check the consumers run first (`fastTopicMessage`), and the clear consume loop with zod alone
 *   beside the same loop with the compiled check, in the same round (their order alternating).
 *
 * Uses its own schema and topics (BENCH_PREFIX, default bench), dropped afterwards.
 * Options: BENCH_ROUNDS (3), BENCH_SEALING_EVENTS (20000, per consume round).
 */
import { performance } from 'node:perf_hooks';
import { loadavg } from 'node:os';
import { fastTopicMessage, topicMessageSchema, type TopicMessage } from '@pstream/events';
import {
  BatchConsumer,
  closePool,
  commonEnv,
  createKafka,
  createKeyring,
  createLogger,
  createPool,
  loadKeyringConfig,
  type Keyring,
  type Pool,
} from '@pstream/platform';
import { migrate } from '@pstream/profile-store';
import type { Kafka } from 'kafkajs';
import { median } from './redis-bench';

export type SealingFigures = {
  /** µs per event. */
  stringify: number;
  sealHot: number;
  sealNew: number;
  parse: number;
  openHot: number;
  openCold: number;
  /** events/s of the consume loop. */
  consumeClear: number;
  consumeSealed: number;
  /**
   * µs of this process's CPU per event in the consume loop (kafkajs fetch and decode, open, JSON.parse, validation).
   */
  consumeClearCpu: number;
  consumeSealedCpu: number;
  /** The sealed loop with every key of the topic already cached (events/s, µs of CPU per event). */
  consumeSealedHot: number;
  consumeSealedHotCpu: number;
  /** µs per message: zod alone, and the compiled check with zod behind it (what the consumers run). */
  validateZod: number;
  validateFast: number;
  /** The clear consume loop validating with zod alone (the loop before issue 22's compiled check). */
  consumeClearZod: number;
  consumeClearZodCpu: number;
};

const BATCH = 500;

function message(i: number, person: string): TopicMessage {
  const at = new Date(Date.UTC(2026, 10, 1) + i * 1000).toISOString();
  return {
    v: 1,
    kind: 'event',
    eventId: `e-${i}`,
    source: 'bench',
    type: 'click',
    userId: person,
    anonymousId: `dev-${person}`,
    profileKey: person,
    occurredAt: at,
    receivedAt: at,
    target: { type: 'product', id: `p-${i % 5000}` },
    tags: ['category:dress', 'brand:acme', 'style:casual'],
    context: { channel: 'search' },
  } as TopicMessage;
}

/** µs per event of `fn` over `batch`-sized calls, repeated until about `ms` passed. */
async function perEvent(events: number, ms: number, fn: (round: number) => unknown): Promise<number> {
  let done = 0;
  let round = 0;
  const start = performance.now();
  while (performance.now() - start < ms) {
    await fn(round++);
    done += events;
  }
  return ((performance.now() - start) * 1000) / done;
}

async function consumeRate(
  kafka: Kafka,
  topic: string,
  keyring: Keyring | undefined,
  events: number,
  tag: string,
  fast = true,
): Promise<{ rate: number; cpuUs: number }> {
  let seen = 0;
  let resolve!: () => void;
  const all = new Promise<void>((r) => (resolve = r));
  const consumer = new BatchConsumer({
    kafka,
    log: createLogger('bench-sealing', 'silent'),
    groupId: `${topic}-${tag}-${Date.now()}`,
    topic,
    dlqTopic: `${topic}-dlq`,
    schema: topicMessageSchema,
    ...(fast && { fastParse: fastTopicMessage }),
    ...(keyring && { keyring }),
    chunkSize: 500,
    apply: async (messages) => {
      seen += messages.length;
      if (seen >= events) resolve();
    },
  });
  const start = performance.now();
  const cpu = process.cpuUsage();
  await consumer.start();
  await all;
  const rate = events / ((performance.now() - start) / 1000);
  const used = process.cpuUsage(cpu);
  await consumer.stop();
  // The bench does nothing else meanwhile: its CPU is the loop's (group join included, a fixed cost).
  return { rate, cpuUs: (used.user + used.system) / events };
}

/** `keyring` with the keys of every value cached (opened once, untimed; KEYRING_CACHE_TTL_MS outlasts a round). */
async function warmKeyring(keyring: Keyring, values: Buffer[]): Promise<Keyring> {
  for (let i = 0; i < values.length; i += BATCH) await keyring.open(values.slice(i, i + BATCH));
  return keyring;
}

export async function runSealingBench(options: {
  databaseUrl: string;
  brokers: string[];
  rounds: number;
  events: number;
  prefix: string;
  log: (line: string) => void;
}): Promise<SealingFigures> {
  const schema = `${options.prefix.replace(/[^a-z0-9_]/g, '_')}_sealing`;
  const pool: Pool = createPool(options.databaseUrl, schema, 'bench-sealing', 4);
  const kafka = createKafka({
    brokers: options.brokers,
    clientId: 'bench-sealing',
    log: createLogger('bench-sealing', 'silent'),
  });
  const admin = kafka.admin();
  const clearTopic = `${options.prefix}-sealing-clear`;
  const sealedTopic = `${options.prefix}-sealing-sealed`;
  await admin.connect();
  try {
    await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await migrate(pool, schema);
    const config = loadKeyringConfig();
    const hotPeople = Array.from({ length: 50 }, (_, i) => `u-hot-${i}`);
    const batch = Array.from({ length: BATCH }, (_, i) => message(i, hotPeople[i % hotPeople.length]!));
    // as ingest seals them: under the keys of both ids each message names (userId, anonymousId)
    const records = batch.map((m) => ({
      key: m.profileKey,
      value: JSON.stringify(m),
      names: [m.profileKey, `dev-${m.profileKey}`],
    }));
    const writer = createKeyring(config, pool);
    const sealed = await writer.seal(records);
    const ms = 1500;
    const rows: SealingFigures[] = [];
    // The consume-loop topics: the same events in clear and sealed, many people.
    await admin
      .deleteTopics({ topics: [clearTopic, sealedTopic, `${clearTopic}-dlq`, `${sealedTopic}-dlq`] })
      .catch(() => undefined);
    await admin.createTopics({
      waitForLeaders: true,
      topics: [clearTopic, sealedTopic].map((topic) => ({ topic, numPartitions: 3 })),
    });
    const producer = kafka.producer();
    await producer.connect();
    /** The sealed topic's values in order of sending, to warm a keyring with. */
    const sealedValues: Buffer[] = [];
    for (let i = 0; i < options.events; i += BATCH) {
      const chunk = Array.from({ length: Math.min(BATCH, options.events - i) }, (_, j) =>
        message(i + j, `u-${(i + j) % 5000}`),
      );
      const plain = chunk.map((m) => ({ key: m.profileKey, value: JSON.stringify(m) }));
      await producer.send({ topic: clearTopic, acks: -1, messages: plain });
      const sealedChunk = await writer.seal(plain.map((p) => ({ ...p, names: [p.key, `dev-${p.key}`] })));
      sealedValues.push(...sealedChunk.map((m) => m.value));
      await producer.send({ topic: sealedTopic, acks: -1, messages: sealedChunk });
    }
    await producer.disconnect();
    const parsed = records.map((x) => JSON.parse(x.value) as unknown);
    for (let r = 0; r < options.rounds; r++) {
      const hot = createKeyring(config, pool);
      // zod alone and the compiled check, in the same round; which runs first alternates
      const clearLoops = async () => {
        const loop = (fast: boolean) =>
          consumeRate(kafka, clearTopic, undefined, options.events, `clear${fast ? '' : 'zod'}${r}`, fast);
        let zod, fast;
        if (r % 2 === 0) {
          zod = await loop(false);
          fast = await loop(true);
        } else {
          fast = await loop(true);
          zod = await loop(false);
        }
        return {
          consumeClear: fast.rate,
          consumeClearCpu: fast.cpuUs,
          consumeClearZod: zod.rate,
          consumeClearZodCpu: zod.cpuUs,
        };
      };
      await hot.seal(records);
      await hot.open(sealed.map((s) => s.value));
      const f: SealingFigures = {
        stringify: await perEvent(BATCH, ms, () => batch.map((m) => Buffer.from(JSON.stringify(m)))),
        sealHot: await perEvent(BATCH, ms, () => hot.seal(records)),
        // every call: 500 people never seen, two ids each: 1 000 keys made (one INSERT for the batch)
        sealNew: await perEvent(BATCH, ms, (k) =>
          createKeyring(config, pool).seal(
            records.map((x, i) => ({
              key: `u-new-${r}-${k}-${i}`,
              value: x.value,
              names: [`u-new-${r}-${k}-${i}`, `dev-new-${r}-${k}-${i}`],
            })),
          ),
        ),
        parse: await perEvent(BATCH, ms, () => sealed.map((_, i) => JSON.parse(records[i]!.value) as unknown)),
        openHot: await perEvent(BATCH, ms, () => hot.open(sealed.map((s) => s.value))),
        // a process that has none of these 50 people (100 ids) cached: one SELECT for the batch
        openCold: await perEvent(BATCH, ms, () => createKeyring(config, pool).open(sealed.map((s) => s.value))),
        validateZod: await perEvent(BATCH, ms, () => parsed.map((m) => topicMessageSchema.safeParse(m))),
        validateFast: await perEvent(BATCH, ms, () =>
          parsed.map((m) => fastTopicMessage(m) ?? topicMessageSchema.safeParse(m)),
        ),
        ...(await clearLoops()),
        ...(await consumeRate(kafka, sealedTopic, createKeyring(config, pool), options.events, `sealed${r}`).then(
          ({ rate, cpuUs }) => ({ consumeSealed: rate, consumeSealedCpu: cpuUs }),
        )),
        ...(await warmKeyring(createKeyring(config, pool), sealedValues)
          .then((warm) => consumeRate(kafka, sealedTopic, warm, options.events, `sealedhot${r}`))
          .then(({ rate, cpuUs }) => ({ consumeSealedHot: rate, consumeSealedHotCpu: cpuUs }))),
      };
      options.log(
        `sealing round ${r + 1}: ${JSON.stringify(Object.fromEntries(Object.entries(f).map(([k, v]) => [k, Math.round(v * 100) / 100])))}`,
      );
      rows.push(f);
    }
    const m = (k: keyof SealingFigures) => median(rows.map((row) => row[k]));
    return {
      stringify: m('stringify'),
      sealHot: m('sealHot'),
      sealNew: m('sealNew'),
      parse: m('parse'),
      openHot: m('openHot'),
      openCold: m('openCold'),
      consumeClear: m('consumeClear'),
      consumeSealed: m('consumeSealed'),
      consumeClearCpu: m('consumeClearCpu'),
      consumeSealedCpu: m('consumeSealedCpu'),
      consumeSealedHot: m('consumeSealedHot'),
      consumeSealedHotCpu: m('consumeSealedHotCpu'),
      validateZod: m('validateZod'),
      validateFast: m('validateFast'),
      consumeClearZod: m('consumeClearZod'),
      consumeClearZodCpu: m('consumeClearZodCpu'),
    };
  } finally {
    await admin.deleteTopics({ topics: [clearTopic, sealedTopic] }).catch(() => undefined);
    await admin.disconnect();
    await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await closePool(pool);
  }
}

if (require.main === module) {
  const started = loadavg();
  runSealingBench({
    databaseUrl: commonEnv.DATABASE_URL.parse(process.env.DATABASE_URL),
    brokers: commonEnv.KAFKA_BROKERS.parse(process.env.KAFKA_BROKERS),
    rounds: Number(process.env.BENCH_ROUNDS ?? 3),
    events: Number(process.env.BENCH_SEALING_EVENTS ?? 20_000),
    prefix: process.env.BENCH_PREFIX ?? 'bench',
    log: (line) => console.log(line),
  }).then(
    (f) => {
      const r = (x: number) => x.toFixed(2);
      console.log(`load average before ${started.map(r).join(' ')}, after ${loadavg().map(r).join(' ')}`);
      console.log('| per event | µs | beside, same run | µs | ratio |');
      console.log('|---|---|---|---|---|');
      console.log(
        `| ingest: seal, person cached | ${r(f.sealHot)} | JSON.stringify + Buffer | ${r(f.stringify)} | ×${r(f.sealHot / f.stringify)} |`,
      );
      console.log(
        `| ingest: seal, 500 new people per batch (keys made and inserted) | ${r(f.sealNew)} | JSON.stringify + Buffer | ${r(f.stringify)} | ×${r(f.sealNew / f.stringify)} |`,
      );
      console.log(
        `| consumer: open, person cached | ${r(f.openHot)} | JSON.parse | ${r(f.parse)} | ×${r(f.openHot / f.parse)} |`,
      );
      console.log(
        `| consumer: open, 50 people uncached per batch (one SELECT) | ${r(f.openCold)} | JSON.parse | ${r(f.parse)} | ×${r(f.openCold / f.parse)} |`,
      );
      console.log(
        `| consume loop (BatchConsumer, no-op apply), events/s | sealed ${Math.round(f.consumeSealed)} | clear | ${Math.round(f.consumeClear)} | ${r(f.consumeSealed / f.consumeClear)} |`,
      );
      console.log(
        `| consume loop, µs of CPU per event (kafkajs, open, parse, validation) | sealed ${r(f.consumeSealedCpu)} | clear | ${r(f.consumeClearCpu)} | ×${r(f.consumeSealedCpu / f.consumeClearCpu)} |`,
      );
      console.log(
        `| consume loop, sealed with every key cached: events/s, µs of CPU per event | ${Math.round(f.consumeSealedHot)}, ${r(f.consumeSealedHotCpu)} | clear | ${Math.round(f.consumeClear)}, ${r(f.consumeClearCpu)} | ${r(f.consumeSealedHot / f.consumeClear)}, ×${r(f.consumeSealedHotCpu / f.consumeClearCpu)} |`,
      );
      console.log(
        `| consumer: validation, compiled check (zod behind it) | ${r(f.validateFast)} | zod safeParse alone | ${r(f.validateZod)} | ×${r(f.validateFast / f.validateZod)} |`,
      );
      console.log(
        `| consume loop in clear, events/s | compiled check ${Math.round(f.consumeClear)} | zod alone | ${Math.round(f.consumeClearZod)} | ${r(f.consumeClear / f.consumeClearZod)} |`,
      );
      console.log(
        `| consume loop in clear, µs of CPU per event | compiled check ${r(f.consumeClearCpu)} | zod alone | ${r(f.consumeClearZodCpu)} | ×${r(f.consumeClearCpu / f.consumeClearZodCpu)} |`,
      );
      process.exit(0);
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
