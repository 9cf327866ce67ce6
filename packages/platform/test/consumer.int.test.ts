import { createHook } from 'node:async_hooks';
import pg from 'pg';
import pino from 'pino';
import { z } from 'zod';
import { createSandbox, type Sandbox, silentLog, startThrowawayPostgres, waitFor } from '@pstream/testkit';
import { BatchConsumer, type ChunkPart, type Consumed } from '../src';

describe('BatchConsumer', () => {
  let box: Sandbox;
  beforeAll(async () => {
    box = await createSandbox(1);
  }, 30_000);
  afterAll(async () => box.cleanup(), 30_000);

  it('sends an unusable message to the DLQ with its reason and carries on', async () => {
    const seen: number[] = [];
    const consumer = new BatchConsumer({
      kafka: box.kafka,
      log: silentLog,
      groupId: `${box.id}-c`,
      topic: box.env.EVENTS_TOPIC!,
      dlqTopic: box.env.DLQ_TOPIC!,
      schema: z.object({ n: z.number() }),
      apply: async (messages: Consumed<{ n: number }>[]) => {
        seen.push(...messages.map((m) => m.value.n));
      },
    });
    const producer = box.kafka.producer();
    await producer.connect();
    await producer.send({
      topic: box.env.EVENTS_TOPIC!,
      messages: [{ value: '{"n":1}' }, { key: 'k', value: 'not json' }, { value: '{"n":"two"}' }, { value: '{"n":3}' }],
    });
    const dead: { reason: string; offset: string; value: string }[] = [];
    const dlq = box.kafka.consumer({ groupId: `${box.id}-dlq` });
    await dlq.connect();
    await dlq.subscribe({ topic: box.env.DLQ_TOPIC!, fromBeginning: true });
    await dlq.run({ eachMessage: async ({ message }) => void dead.push(JSON.parse(message.value!.toString())) });
    await consumer.start();
    try {
      await waitFor('both good messages applied and both bad ones dead-lettered', async () =>
        seen.length === 2 && dead.length === 2 ? true : undefined,
      );
      expect(seen).toEqual([1, 3]);
      expect(dead.map((d) => d.offset)).toEqual(['1', '2']);
      expect(dead[0]!.reason).toMatch(/not JSON/);
      expect(dead[1]!.reason).toMatch(/^invalid message: n: /);
      expect(dead[1]!.value).toBe('{"n":"two"}');
    } finally {
      await consumer.stop();
      await consumer.stop();
      await dlq.disconnect();
      await producer.disconnect();
    }
  }, 60_000);

  /**
   * Two partitions; the first apply call sends more messages and fails once transiently. Answers how many
   * apply calls began with a fetch in flight (kafkajs's FETCH_START not yet followed by its FETCH) and what
   * was applied, by partition in order, once every offset is committed.
   */
  const run = async (name: string, fetchAhead: boolean) => {
    const { topic, drop } = await ownTopic(box, name, 2);
    const producer = box.kafka.producer();
    await producer.connect();
    const groupId = `${box.id}-${name}`;
    const applied = new Map<number, { n: number; offset: string }[]>([
      [0, []],
      [1, []],
    ]);
    let fetching = 0;
    let fetchesDuringApply = 0;
    let calls = 0;
    const send = (from: number) =>
      producer.send({
        topic,
        acks: -1,
        messages: [0, 1].flatMap((partition) =>
          [0, 1, 2, 3, 4].map((i) => ({ partition, value: JSON.stringify({ n: from + partition * 5 + i }) })),
        ),
      });
    const consumer = new BatchConsumer({
      fetchAhead,
      fetchMaxWaitMs: 50,
      retryInitialMs: 10,
      topic,
      groupId,
      schema: z.object({ n: z.number() }),
      kafka: box.kafka,
      dlqTopic: box.env.DLQ_TOPIC!,
      log: silentLog,
      apply: async (messages: Consumed<{ n: number }>[], partition) => {
        if (fetching > 0) fetchesDuringApply++;
        if (++calls === 1) {
          await send(100);
          throw new Error('transient, once');
        }
        applied.get(partition)!.push(...messages.map((m) => ({ n: m.value.n, offset: m.offset })));
      },
    });
    const admin = box.kafka.admin();
    await admin.connect();
    try {
      await consumer.start();
      const kafkajs = (consumer as unknown as { consumer: import('kafkajs').Consumer }).consumer;
      kafkajs.on(kafkajs.events.FETCH_START, () => void fetching++);
      // (A fetch started before these listeners ends without its start counted.)
      kafkajs.on(kafkajs.events.FETCH, () => void (fetching = Math.max(0, fetching - 1)));
      await send(0);
      await waitFor('all twenty applied and committed', async () => {
        const committed = (await admin.fetchOffsets({ groupId, topics: [topic] }))[0]!.partitions;
        return [...applied.values()].every((a) => a.length === 10) && committed.every((p) => p.offset === '10')
          ? true
          : undefined;
      });
      return { fetchesDuringApply, applied };
    } finally {
      await consumer.stop();
      await admin.disconnect();
      await producer.disconnect();
      await drop();
    }
  };

  it('fetches while a batch is applied, and still applies every message once, in order, committed', async () => {
    const ahead = await run('ahead', true);
    const inTurn = await run('in-turn', false);
    expect(ahead.fetchesDuringApply).toBeGreaterThan(0);
    expect(inTurn.fetchesDuringApply).toBe(0);
    for (const { applied } of [ahead, inTurn]) {
      for (const [partition, list] of applied) {
        expect(list.map((a) => a.offset)).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
        expect(list.map((a) => a.n)).toEqual([0, 1, 2, 3, 4, 100, 101, 102, 103, 104].map((n) => n + partition * 5));
      }
    }
  }, 90_000);
});

describe('BatchConsumer fetch ahead', () => {
  let box: Sandbox;
  beforeAll(async () => {
    box = await createSandbox(1);
  }, 30_000);
  afterAll(async () => box.cleanup(), 30_000);

  /** The sockets of this process, without the test runner's own pipes. */
  const sockets = () => process.getActiveResourcesInfo().filter((kind) => kind === 'TCPSocketWrap').length;
  /**
   * Watches the timers that kafkajs or our consumer create from now on; `live()` gives the creation stack of each
   * one still pending. A count of the whole process's timers also sees the test runner's own (its reporter's
   * debounce), which come and go on their own schedule.
   */
  const watchTimers = () => {
    const pending = new Map<number, string>();
    let seen = 0;
    const hook = createHook({
      init(id, type) {
        if (type !== 'Timeout') return;
        const limit = Error.stackTraceLimit;
        Error.stackTraceLimit = 40;
        const stack = new Error().stack ?? '';
        Error.stackTraceLimit = limit;
        if (!/[/\\]kafkajs[/\\]|packages[/\\]platform[/\\]src[/\\]/.test(stack)) return;
        pending.set(id, stack);
        seen++;
      },
      destroy: (id) => void pending.delete(id),
    }).enable();
    return {
      live: () => [...pending.values()],
      seen: () => seen,
      end: () => void hook.disable(),
    };
  };

  it('stopped while a fetch ahead is in flight, ends it first: no socket, timer or event outlives stop()', async () => {
    const { topic, drop } = await ownTopic(box, 'stop-ahead');
    const producer = box.kafka.producer();
    await producer.connect();
    await producer.send({ topic, acks: -1, messages: [{ value: '{"n":1}' }] });
    let entered!: () => void;
    const applying = new Promise<void>((r) => (entered = r));
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const consumer = new BatchConsumer({
      // The fetch ahead waits at the broker for a megabyte that never comes, for 1.5 s.
      fetchMinBytes: 1 << 20,
      fetchMaxWaitMs: 1500,
      topic,
      groupId: `${box.id}-stop-ahead`,
      schema: z.object({ n: z.number() }),
      kafka: box.kafka,
      dlqTopic: box.env.DLQ_TOPIC!,
      log: silentLog,
      apply: async () => {
        entered();
        await released;
      },
    });
    const before = sockets();
    const timers = watchTimers();
    const events: { what: string; afterStop: boolean }[] = [];
    let stopped = false;
    try {
      await consumer.start();
      const kafkajs = (consumer as unknown as { consumer: import('kafkajs').Consumer }).consumer;
      // Fetches in flight: the one that started before these listeners ends before the next starts.
      let fetching = 0;
      kafkajs.on(kafkajs.events.FETCH_START, () => void fetching++);
      kafkajs.on(kafkajs.events.FETCH, () => void (fetching = Math.max(0, fetching - 1)));
      for (const what of [kafkajs.events.FETCH_START, kafkajs.events.FETCH, kafkajs.events.REQUEST] as const)
        kafkajs.on(what, () => void events.push({ what, afterStop: stopped }));
      const requests: { apiName: string; sentAt: number; duration: number }[] = [];
      kafkajs.on(kafkajs.events.REQUEST, ({ payload }) => void requests.push(payload));
      await applying;
      await waitFor('the fetch ahead to start while the batch is applied', async () =>
        events.some((e) => e.what === kafkajs.events.FETCH_START) ? true : undefined,
      );
      release();
      await consumer.stop();
      stopped = true;
      // Every fetch that started had answered (kafkajs's FETCH) before stop() resolved.
      expect(events.some((e) => e.what === kafkajs.events.FETCH_START)).toBe(true);
      expect(fetching).toBe(0);
      // And the member left the group only then: on one broker the LeaveGroup would otherwise wait behind the
      // fetch on the same connection, and on several the fetch would still run after the disconnect.
      const fetchesAnswered = Math.max(
        ...requests.filter((r) => r.apiName === 'Fetch').map((r) => r.sentAt + r.duration),
      );
      const leave = requests.find((r) => r.apiName === 'LeaveGroup');
      expect(leave?.sentAt).toBeGreaterThanOrEqual(fetchesAnswered);
      await new Promise((r) => setTimeout(r, 2000));
      expect(events.filter((e) => e.afterStop)).toEqual([]);
      // (Fewer sockets is fine: one of the sandbox's own clients may have closed meanwhile.)
      expect(sockets()).toBeLessThanOrEqual(before);
      expect(timers.seen()).toBeGreaterThan(0);
      expect(timers.live()).toEqual([]);
    } finally {
      timers.end();
      release();
      await consumer.stop();
      await producer.disconnect();
      await drop();
    }
  }, 60_000);

  it("takes the fetch ahead after a batch that ends in a transaction's commit marker, and applies every message once", async () => {
    const { topic, drop } = await ownTopic(box, 'txn-ahead', 2);
    /* eslint-disable @typescript-eslint/no-require-imports -- kafkajs's internals have no typings */
    const ConsumerGroup = require('kafkajs/src/consumer/consumerGroup') as {
      prototype: { takeFetchedAhead(batches: { partition: number }[], epoch: object): unknown[] | undefined };
    };
    /* eslint-enable @typescript-eslint/no-require-imports */
    const take = jest.spyOn(ConsumerGroup.prototype, 'takeFetchedAhead');
    const producer = box.kafka.producer({ transactionalId: `${box.id}-txn`, maxInFlightRequests: 1, idempotent: true });
    await producer.connect();
    const applied = new Map<number, number[]>([
      [0, []],
      [1, []],
    ]);
    const groupId = `${box.id}-txn-ahead`;
    const consumer = new BatchConsumer({
      fetchMaxWaitMs: 20,
      topic,
      groupId,
      schema: z.object({ n: z.number() }),
      kafka: box.kafka,
      dlqTopic: box.env.DLQ_TOPIC!,
      log: silentLog,
      apply: async (messages: Consumed<{ n: number }>[], partition) => {
        // Long enough for the next transaction to be committed meanwhile: the fetch ahead finds it.
        await new Promise((r) => setTimeout(r, 20));
        applied.get(partition)!.push(...messages.map((m) => m.value.n));
      },
    });
    const admin = box.kafka.admin();
    await admin.connect();
    try {
      await consumer.start();
      for (let n = 0; n < 60; n += 2) {
        const tx = await producer.transaction();
        await tx.send({ topic, messages: [0, 1].map((partition) => ({ partition, value: JSON.stringify({ n }) })) });
        await tx.commit();
        await new Promise((r) => setTimeout(r, 10));
      }
      await waitFor('every message applied and committed past the last commit marker', async () => {
        const committed = (await admin.fetchOffsets({ groupId, topics: [topic] }))[0]!.partitions;
        // 30 transactions of one message per partition: 30 messages and 30 commit markers each.
        return committed.every((p) => p.offset === '60') ? true : undefined;
      });
      const expected = Array.from({ length: 30 }, (_, i) => i * 2);
      expect(applied.get(0)).toEqual(expected);
      expect(applied.get(1)).toEqual(expected);
      const offered = take.mock.calls.reduce((n, [batches]) => n + batches.length, 0);
      const taken = take.mock.results.reduce((n, r) => n + ((r.value as unknown[] | undefined)?.length ?? 0), 0);
      // Each batch in hand ends in its transaction's marker; the fetch ahead starts after it, where the
      // position stands once the batch is processed, so none of what it brings is dropped.
      expect(offered).toBeGreaterThan(0);
      expect(taken).toBe(offered);
    } finally {
      take.mockRestore();
      await consumer.stop();
      await producer.disconnect();
      await admin.disconnect();
      await drop();
    }
  }, 90_000);
});

type Dead = { reason: string; consumerGroup: string; topic: string; partition: number; offset: string; value: string };

/** Every DLQ record of `topic` so far, read by a fresh group in the background. */
async function watchDlq(box: Sandbox, topic: string) {
  const dead: Dead[] = [];
  const dlq = box.kafka.consumer({ groupId: `${box.id}-dlq-${Math.random().toString(36).slice(2)}` });
  await dlq.connect();
  await dlq.subscribe({ topic, fromBeginning: true });
  await dlq.run({ eachMessage: async ({ message }) => void dead.push(JSON.parse(message.value!.toString()) as Dead) });
  return { dead, close: () => dlq.disconnect() };
}

/** A topic of the sandbox's own (one partition unless told), and how to delete it. */
async function ownTopic(box: Sandbox, name: string, numPartitions = 1) {
  const topic = `${box.env.EVENTS_TOPIC!}.${name}`;
  const admin = box.kafka.admin();
  await admin.connect();
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions }] });
  const drop = async () => {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  };
  return { topic, drop };
}

/** A pino logger whose lines land in `lines` (to check what was logged at which level). */
function capturingLog() {
  const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
  const log = pino({ level: 'warn' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { log, lines };
}

describe('BatchConsumer failure handling on real Postgres', () => {
  let box: Sandbox;
  let pool: pg.Pool;
  const schema = z.object({ n: z.number() });
  beforeAll(async () => {
    box = await createSandbox(1);
    pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 4 });
    await createTables(pool);
  }, 30_000);

  /**
   * A row per message and the consumer's position, in the test's schema. 13 is the "bad data"
   * Postgres refuses (a CHECK violation, SQLSTATE 23514); the position row commits with the
   * rows, as the segmenter does it.
   */
  const createTables = async (db: pg.Pool) => {
    await db.query(`CREATE SCHEMA ${box.env.PG_SCHEMA}`);
    await db.query(
      `CREATE TABLE ${box.env.PG_SCHEMA}.rows (n int PRIMARY KEY CHECK (n <> 13), applied int NOT NULL DEFAULT 1)`,
    );
    await db.query(`CREATE TABLE ${box.env.PG_SCHEMA}.pos (p int PRIMARY KEY, next bigint NOT NULL)`);
  };
  afterAll(async () => {
    await pool.end();
    await box.cleanup();
  }, 30_000);

  /**
   * Applies rows and the positions of one or more partitions' chunks in one transaction; rows at or
   * past each stored position only. `pos`: the table of positions.
   */
  const applyPartsTo =
    (db: () => pg.Pool, pos = 'pos') =>
    async (parts: ChunkPart<{ n: number }>[]) => {
      const client = await db().connect();
      try {
        await client.query('BEGIN');
        for (const { messages, partition, chunk } of [...parts].sort((a, b) => a.partition - b.partition)) {
          await client.query(`INSERT INTO ${box.env.PG_SCHEMA}.${pos} VALUES ($1, 0) ON CONFLICT DO NOTHING`, [
            partition,
          ]);
          const { rows } = await client.query(`SELECT next FROM ${box.env.PG_SCHEMA}.${pos} WHERE p = $1 FOR UPDATE`, [
            partition,
          ]);
          const next = BigInt(rows[0].next);
          const fresh = messages.filter((m) => BigInt(m.offset) >= next).map((m) => m.value.n);
          if (fresh.length > 0) {
            await client.query(
              `INSERT INTO ${box.env.PG_SCHEMA}.rows (n) SELECT * FROM unnest($1::int[]) ON CONFLICT (n) DO UPDATE SET applied = rows.applied + 1`,
              [fresh],
            );
          }
          if (BigInt(chunk.lastOffset) >= next)
            await client.query(`UPDATE ${box.env.PG_SCHEMA}.${pos} SET next = $2 WHERE p = $1`, [
              partition,
              BigInt(chunk.lastOffset) + 1n,
            ]);
        }
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    };
  /** `applyPartsTo` for one partition's chunk, as `apply` is called. */
  const applyTo =
    (db: () => pg.Pool, pos = 'pos') =>
    (messages: Consumed<{ n: number }>[], partition: number, chunk: { topic: string; lastOffset: string }) =>
      applyPartsTo(db, pos)([{ messages, partition, chunk }]);
  const classify = (err: unknown) =>
    /^2[23]/.test(String((err as { code?: string }).code)) ? ('poison' as const) : ('transient' as const);

  it('isolates each poison message, dead-letters it once with its reason and applies the rest exactly once', async () => {
    const topic = box.env.EVENTS_TOPIC!;
    const producer = box.kafka.producer();
    await producer.connect();
    // Poison first, in the middle, twice in a row, and last; plus one invalid message.
    const ns = [13, 1, 2, 3, 4, 5, 13, 13, 6, 7, 8, 9, 10, 11, 12, 14, 15, 16, 17, 18, 13];
    const values = ns.map((n) => JSON.stringify({ n }));
    values.splice(10, 0, '{"n":"ten"}');
    await producer.send({ topic, messages: values.map((value) => ({ value })) });
    const watch = await watchDlq(box, box.env.DLQ_TOPIC!);
    const consumer = new BatchConsumer({
      kafka: box.kafka,
      log: silentLog,
      groupId: `${box.id}-poison`,
      topic,
      dlqTopic: box.env.DLQ_TOPIC!,
      schema,
      classify,
      chunkSize: 8,
      apply: applyTo(() => pool),
    });
    await consumer.start();
    try {
      const want = ns.filter((n) => n !== 13).length;
      await waitFor(
        'the good rows applied and the bad messages dead-lettered',
        async () => {
          const { rows } = await pool.query(`SELECT count(*)::int AS c FROM ${box.env.PG_SCHEMA}.rows`);
          return rows[0].c === want && watch.dead.length === 5 ? true : undefined;
        },
        30_000,
      );
      const { rows } = await pool.query(`SELECT n, applied FROM ${box.env.PG_SCHEMA}.rows ORDER BY n`);
      expect(rows).toEqual(
        ns
          .filter((n) => n !== 13)
          .sort((a, b) => a - b)
          .map((n) => ({ n, applied: 1 })),
      );
      const poisonOffsets = values.flatMap((v, i) => (v === '{"n":13}' ? [String(i)] : []));
      const byOffset = [...watch.dead].sort((a, b) => Number(a.offset) - Number(b.offset));
      expect(byOffset.map((d) => d.offset)).toEqual([...poisonOffsets, '10'].sort((a, b) => Number(a) - Number(b)));
      for (const d of byOffset.filter((x) => x.offset !== '10')) {
        expect(d).toMatchObject({ consumerGroup: `${box.id}-poison`, topic, partition: 0, value: '{"n":13}' });
        expect(d.reason).toMatch(/^apply failed: 23514: .*check constraint/);
      }
      expect(byOffset.find((d) => d.offset === '10')!.reason).toMatch(/^invalid message: n:/);
      // The position moved past the last (poison) message, so a restart reads nothing again.
      const pos = await pool.query(`SELECT next FROM ${box.env.PG_SCHEMA}.pos WHERE p = 0`);
      expect(String(pos.rows[0].next)).toBe(String(values.length));
      expect(consumer.stalledPartitions()).toEqual([]);
      expect(consumer.unreadyReason()).toBeUndefined();
    } finally {
      await consumer.stop();
      await watch.close();
      await producer.disconnect();
    }
  }, 90_000);

  it('retries a transient failure with backoff, reports the stall on readiness, logs it at error level, and recovers', async () => {
    const throwaway = await startThrowawayPostgres();
    const tpool = new pg.Pool({ connectionString: throwaway.url, max: 2, connectionTimeoutMillis: 2000 });
    tpool.on('error', () => undefined);
    await createTables(tpool);
    const { topic, drop } = await ownTopic(box, 'transient');
    const producer = box.kafka.producer();
    await producer.connect();
    const watch = await watchDlq(box, box.env.DLQ_TOPIC!);
    const { log, lines } = capturingLog();
    const consumer = new BatchConsumer({
      kafka: box.kafka,
      log,
      groupId: `${box.id}-transient`,
      topic,
      dlqTopic: box.env.DLQ_TOPIC!,
      schema,
      classify,
      stallAfterMs: 1500,
      stallLogEveryMs: 60_000,
      retryInitialMs: 50,
      retryMaxMs: 300,
      apply: applyTo(() => tpool),
    });
    await consumer.start();
    try {
      await producer.send({ topic, messages: [{ value: '{"n":1}' }] });
      await waitFor('the first row', async () =>
        (await tpool.query(`SELECT 1 FROM ${box.env.PG_SCHEMA}.rows WHERE n = 1`)).rowCount === 1 ? true : undefined,
      );
      throwaway.stop();
      await producer.send({ topic, messages: [{ value: '{"n":2}' }, { value: '{"n":3}' }] });
      const reason = await waitFor(
        'readiness to name the stalled partition',
        async () => consumer.unreadyReason(),
        30_000,
      );
      expect(reason).toMatch(
        new RegExp(`group ${box.id}-transient stalled: ${topic.replace(/\./g, '\\.')}\\[0\\] at offset 1 for \\d+ s`),
      );
      expect(consumer.stalledPartitions()).toEqual([{ topic, partition: 0, offset: '1', since: expect.any(Number) }]);
      // Several attempts later, still one error line (once a minute), the rest warnings.
      const firstError = await waitFor(
        'an error line',
        async () => {
          const i = lines.findIndex((l) => l.level === 50);
          return i >= 0 ? i : undefined;
        },
        30_000,
      );
      await waitFor(
        'a few more attempts',
        async () => (lines.slice(firstError).filter((l) => l.level === 40).length >= 4 ? true : undefined),
        30_000,
      );
      const errors = lines.filter((l) => l.level === 50);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({
        msg: 'partition stalled: chunk keeps failing transiently',
        partition: 0,
        offset: '1',
      });
      throwaway.start();
      await waitFor(
        'the stalled rows once Postgres is back',
        async () => {
          const { rows } = await tpool.query(`SELECT n, applied FROM ${box.env.PG_SCHEMA}.rows ORDER BY n`);
          return rows.length === 3 ? rows : undefined;
        },
        60_000,
      );
      expect((await tpool.query(`SELECT n, applied FROM ${box.env.PG_SCHEMA}.rows ORDER BY n`)).rows).toEqual(
        [1, 2, 3].map((n) => ({ n, applied: 1 })),
      );
      await waitFor('readiness back', async () => (consumer.unreadyReason() === undefined ? true : undefined));
      expect(consumer.stalledPartitions()).toEqual([]);
      expect(watch.dead.filter((d) => d.consumerGroup === `${box.id}-transient`)).toEqual([]); // transient failures never go to the DLQ
    } finally {
      await consumer.stop();
      await watch.close();
      await producer.disconnect();
      await drop();
      await tpool.end();
      throwaway.destroy();
    }
  }, 180_000);

  it('applies the partitions of a fetch in one call, and a poison message in one of them still only costs its own', async () => {
    const { topic, drop } = await ownTopic(box, 'together', 3);
    const producer = box.kafka.producer();
    await producer.connect();
    const watch = await watchDlq(box, box.env.DLQ_TOPIC!);
    const groupId = `${box.id}-together`;
    // Positions of its own: partition 0 of this topic is not the events topic's.
    await pool.query(`CREATE TABLE ${box.env.PG_SCHEMA}.pos_together (p int PRIMARY KEY, next bigint NOT NULL)`);
    /** Every call of applyTogether: the partitions it carried and whether it committed. */
    const calls: { partitions: number[]; ok: boolean }[] = [];
    const together = applyPartsTo(() => pool, 'pos_together');
    const member = () =>
      new BatchConsumer({
        kafka: box.kafka,
        log: silentLog,
        groupId,
        topic,
        dlqTopic: box.env.DLQ_TOPIC!,
        schema,
        classify,
        partitionsConcurrently: 3,
        apply: applyTo(() => pool, 'pos_together'),
        applyTogether: async (parts) => {
          const partitions = parts.map((p) => p.partition).sort();
          try {
            await together(parts);
            calls.push({ partitions, ok: true });
          } catch (err) {
            calls.push({ partitions, ok: false });
            throw err;
          }
        },
      });
    /** `ns` on each partition, sent before a member starts, so its first fetch brings all three. */
    const send = (byPartition: number[][]) =>
      producer.send({
        topic,
        acks: -1,
        messages: byPartition.flatMap((ns, partition) => ns.map((n) => ({ partition, value: JSON.stringify({ n }) }))),
      });
    const applied = async () =>
      (await pool.query(`SELECT n, applied FROM ${box.env.PG_SCHEMA}.rows WHERE n >= 100 ORDER BY n`)).rows;
    try {
      await send([[100, 101], [110], [120, 121]]);
      let consumer = member();
      await consumer.start();
      await waitFor('the first fetch applied', async () => ((await applied()).length === 5 ? true : undefined), 30_000);
      await consumer.stop();
      expect(calls[0]).toEqual({ partitions: [0, 1, 2], ok: true });

      // Poison (13) on partition 1, between good messages; the other partitions' chunks came in the same fetch.
      await send([[102], [111, 13, 112], [122]]);
      calls.length = 0;
      consumer = member();
      await consumer.start();
      await waitFor(
        'the good rows applied and the poison dead-lettered',
        async () => ((await applied()).length === 9 && watch.dead.some((d) => d.topic === topic) ? true : undefined),
        30_000,
      );
      await consumer.stop();
      expect(calls[0]).toEqual({ partitions: [0, 1, 2], ok: false });
      expect(await applied()).toEqual([100, 101, 102, 110, 111, 112, 120, 121, 122].map((n) => ({ n, applied: 1 })));
      const dead = watch.dead.filter((d) => d.topic === topic);
      expect(dead).toEqual([expect.objectContaining({ partition: 1, offset: '2', value: '{"n":13}' })]);
      const { rows } = await pool.query(`SELECT p, next FROM ${box.env.PG_SCHEMA}.pos_together ORDER BY p`);
      expect(rows.map((r) => [r.p, String(r.next)])).toEqual([
        [0, '3'],
        [1, '4'],
        [2, '3'],
      ]);
    } finally {
      await watch.close();
      await producer.disconnect();
      await drop();
    }
  }, 120_000);

  it("commits a fetch's partitions in one OffsetCommit, after their chunks are applied", async () => {
    const { topic, drop } = await ownTopic(box, 'commits', 3);
    const producer = box.kafka.producer();
    await producer.connect();
    const groupId = `${box.id}-commits`;
    let calls = 0;
    let applied = 0;
    const consumer = new BatchConsumer({
      kafka: box.kafka,
      log: silentLog,
      groupId,
      topic,
      dlqTopic: box.env.DLQ_TOPIC!,
      schema,
      partitionsConcurrently: 3,
      apply: async (messages: Consumed<{ n: number }>[]) => void (applied += messages.length),
      applyTogether: async (parts) => {
        calls++;
        for (const p of parts) applied += p.messages.length;
      },
    });
    const admin = box.kafka.admin();
    await admin.connect();
    const committed = async () =>
      (await admin.fetchOffsets({ groupId, topics: [topic] }))[0]!.partitions
        .map((p) => [p.partition, p.offset])
        .sort((a, b) => Number(a[0]) - Number(b[0]));
    try {
      await consumer.start();
      // kafkajs's own consumer, for its instrumentation events: one per OffsetCommit request.
      const kafkajs = (consumer as unknown as { consumer: import('kafkajs').Consumer }).consumer;
      let commits = 0;
      kafkajs.on(kafkajs.events.COMMIT_OFFSETS, () => void commits++);
      await producer.send({
        topic,
        acks: -1,
        messages: [0, 1, 2].flatMap((partition) => [1, 2].map((n) => ({ partition, value: JSON.stringify({ n }) }))),
      });
      await waitFor('all six applied and committed', async () =>
        applied === 6 &&
        JSON.stringify(await committed()) ===
          JSON.stringify([
            [0, '2'],
            [1, '2'],
            [2, '2'],
          ])
          ? true
          : undefined,
      );
      // One per call of applyTogether (one per fetch), not one per partition batch (three per fetch).
      expect(commits).toBeGreaterThan(0);
      expect(commits).toBeLessThanOrEqual(calls);
    } finally {
      await consumer.stop();
      await admin.disconnect();
      await producer.disconnect();
      await drop();
    }
  }, 60_000);

  it('refuses to start when stored positions lie beyond the topic end', async () => {
    const consumer = new BatchConsumer({
      kafka: box.kafka,
      log: silentLog,
      groupId: `${box.id}-beyond`,
      topic: box.env.EVENTS_TOPIC!,
      dlqTopic: box.env.DLQ_TOPIC!,
      schema,
      apply: async () => undefined,
      storedOffsets: async () => new Map([[0, '1000000']]),
      positionGraceMs: 300,
    });
    try {
      await expect(consumer.start()).rejects.toMatchObject({
        code: 'PLT_POSITION_BEYOND_END',
        message: expect.stringMatching(/partition 0: stored 1000000 > end \d+/),
      });
    } finally {
      await consumer.stop();
    }
  }, 30_000);

  it('waits for an end that catches up with a stored position (a leader change), then starts there and applies what follows', async () => {
    // A topic of its own, empty: every stored position above 0 lies beyond its end, as one does
    // while a new leader reports an end lower than the old leader's.
    const { topic, drop } = await ownTopic(box, 'grace');
    const producer = box.kafka.producer();
    await producer.connect();
    const applied: string[] = [];
    const { log, lines } = capturingLog();
    const consumer = new BatchConsumer({
      kafka: box.kafka,
      log,
      groupId: `${box.id}-grace`,
      topic,
      dlqTopic: box.env.DLQ_TOPIC!,
      schema,
      // Offsets 0-2 count as applied before (the stored position is 3); apply skips them as the segmenter does.
      storedOffsets: async () => new Map([[0, '3']]),
      positionGraceMs: 60_000,
      apply: async (messages) =>
        void applied.push(...messages.filter((m) => BigInt(m.offset) >= 3n).map((m) => m.offset)),
    });
    const started = consumer.start();
    try {
      const waiting = await waitFor(
        'the consumer to say what it waits for',
        async () => lines.find((l) => l.msg.startsWith('stored positions lie beyond the topic end')),
        30_000,
      );
      expect(waiting).toMatchObject({ level: 40, beyond: 'partition 0: stored 3 > end 0', graceMs: 60_000 });
      await producer.send({
        topic,
        acks: -1,
        messages: [0, 1, 2, 3, 4].map((n) => ({ value: JSON.stringify({ n }) })),
      });
      await started;
      // (A fetch that began before the seek may deliver them twice; apply is idempotent per message.)
      await waitFor('offsets 3 and 4 applied', async () => (new Set(applied).size === 2 ? true : undefined), 30_000);
      expect([...new Set(applied)]).toEqual(['3', '4']);
      expect(consumer.unreadyReason()).toBeUndefined();
    } finally {
      await started.catch(() => undefined);
      await consumer.stop();
      await producer.disconnect();
      await drop();
    }
  }, 90_000);

  it('re-checks on an assignment too: a position beyond the end for longer than the grace stops the running consumer', async () => {
    const { topic, drop } = await ownTopic(box, 'grace-rebalance');
    // Within the topic at start, beyond its end at the assignment that follows (the topic's data
    // is gone in between, as after a recreation under a running consumer).
    let reads = 0;
    const consumer = new BatchConsumer({
      kafka: box.kafka,
      log: silentLog,
      groupId: `${box.id}-grace-rebalance`,
      topic,
      dlqTopic: box.env.DLQ_TOPIC!,
      schema,
      storedOffsets: async () => new Map([[0, reads++ === 0 ? '0' : '7']]),
      positionGraceMs: 500,
      apply: async () => undefined,
    });
    try {
      await consumer.start();
      const reason = await waitFor(
        'the consumer to stop on the assignment',
        async () => consumer.unreadyReason()?.match(/^consumer stopped: .*/)?.[0],
        30_000,
      );
      expect(reason).toMatch(/partition 0: stored 7 > end 0\), still after \d+ s/);
      expect(reads).toBeGreaterThan(2); // re-read during the grace, not refused on the first look
    } finally {
      await consumer.stop();
      await drop();
    }
  }, 60_000);
});
