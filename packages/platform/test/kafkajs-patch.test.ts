/**
 * kafkajs 2.2.4 is patched (patches/kafkajs@2.2.4.patch, docs/operations.md §7 "Ingest"): its record
 * encoding writes varints in place, skips `Long` for small numbers, sizes each record's buffer once,
 * groups messages per partition in one pass and checksums eight bytes a step. Every one of those must
 * give the bytes the unpatched code gave; these check them against kafkajs's own decoders and against
 * a plain bytewise CRC-32C written here from the polynomial.
 *
 * Its fetch-side decoding is patched too (the scorer's and segmenter's consume loops): records are read
 * in place in their batch, offsets and timestamps added as numbers when they are safe integers (Long
 * otherwise), no header array for a record without headers, and a batch's offset filter compares
 * numbers. The decoded values must be exactly what BigInt arithmetic on the encoded batch gives.
 */
import { randomBytes } from 'node:crypto';

/* eslint-disable @typescript-eslint/no-require-imports -- kafkajs's internals have no typings */
type EncoderInstance = {
  writeVarInt(v: number): unknown;
  writeVarLong(v: number): unknown;
  writeUVarInt(v: number): unknown;
  size(): number;
  buffer: Buffer;
};
const Encoder = require('kafkajs/src/protocol/encoder') as {
  new (size?: number): EncoderInstance;
  sizeOfVarInt(v: number): number;
  sizeOfVarLong(v: number): number;
};
const Decoder = require('kafkajs/src/protocol/decoder') as new (b: Buffer) => {
  readVarInt(): number;
  readVarLong(): { toString(): string };
  readUVarInt(): number;
  readVarIntBytes(): Buffer | null;
};
const Long = require('kafkajs/src/utils/long') as { fromValue(v: unknown): { toString(): string } };
const crc32C = require('kafkajs/src/protocol/recordBatch/crc32C') as (b: Buffer) => number;
const Record = require('kafkajs/src/protocol/recordBatch/record/v0') as (r: object) => { buffer: Buffer };
const decodeRecord = require('kafkajs/src/protocol/recordBatch/record/v0/decoder') as (
  d: InstanceType<typeof Decoder>,
  batch: object,
) => { key: Buffer; value: Buffer; headers: Record<string, Buffer | Buffer[]>; offset: string; timestamp: string };
const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0') as {
  RecordBatch(b: object): Promise<{ buffer: Buffer }>;
};
const decodeBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder') as (d: object) => Promise<{
  records: { key: Buffer | null; value: Buffer | null; headers: object; offset: string; timestamp: string }[];
}>;
const Batch = require('kafkajs/src/consumer/batch') as new (
  topic: string,
  fetchedOffset: string,
  data: { partition: number; highWatermark: string; messages: { offset: string }[]; abortedTransactions: [] },
) => { messages: { offset: string }[] };
const groupMessagesPerPartition = require('kafkajs/src/producer/groupMessagesPerPartition') as (args: {
  topic: string;
  partitionMetadata: unknown[];
  messages: { key: string }[];
  partitioner: (a: { message: { key: string } }) => number;
}) => Record<string, { key: string }[]>;
/* eslint-enable @typescript-eslint/no-require-imports */

/** CRC-32C one bit at a time, from the reflected Castagnoli polynomial. */
function referenceCrc32C(bytes: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

describe('the patched kafkajs encoding', () => {
  it('checksums as CRC-32C does, at every length around the eight-byte steps', () => {
    expect(crc32C(Buffer.from('123456789'))).toBe(0xe3069283);
    for (let n = 0; n < 70; n++) {
      const bytes = randomBytes(n);
      expect(crc32C(bytes)).toBe(referenceCrc32C(bytes));
    }
    const big = randomBytes(100_003);
    expect(crc32C(big)).toBe(referenceCrc32C(big));
  });

  it('writes varints and varlongs that kafkajs decodes back, small numbers and large', () => {
    const ints = [
      0,
      1,
      -1,
      63,
      -64,
      64,
      127,
      128,
      300,
      -300,
      2 ** 20,
      2 ** 30 - 1,
      -(2 ** 30),
      2 ** 31 - 1,
      -(2 ** 31),
    ];
    const encoder = new Encoder();
    for (const v of ints) encoder.writeVarInt(v);
    const longs = [...ints, 2 ** 30, -(2 ** 30) - 1, 2 ** 31, 2 ** 40 + 5, -(2 ** 45), Number.MAX_SAFE_INTEGER];
    for (const v of longs) {
      const before = encoder.size();
      encoder.writeVarLong(v);
      expect(encoder.size() - before).toBe(Encoder.sizeOfVarLong(v));
    }
    encoder.writeUVarInt(2 ** 32 - 1);
    const decoder = new Decoder(encoder.buffer);
    for (const v of ints) expect(decoder.readVarInt()).toBe(v);
    for (const v of longs) expect(decoder.readVarLong().toString()).toBe(Long.fromValue(v).toString());
    expect(decoder.readUVarInt() >>> 0).toBe(2 ** 32 - 1);
  });

  it('encodes records that decode to their key, value, headers and deltas', () => {
    const cases = [
      { key: 'a'.repeat(64), value: randomBytes(430), offsetDelta: 0, timestampDelta: 0 },
      { key: randomBytes(32), value: randomBytes(100_000), offsetDelta: 4_999, timestampDelta: 2 ** 33 },
      { key: null, value: Buffer.alloc(0), offsetDelta: 1, timestampDelta: -5, headers: { h: 'v', m: ['x', 'y'] } },
    ];
    for (const c of cases) {
      const bytes = Record(c).buffer;
      const decoder = new Decoder(bytes);
      const length = decoder.readVarInt();
      expect(Encoder.sizeOfVarInt(length) + length).toBe(bytes.length);
      const r = decodeRecord(decoder, { firstOffset: '0', firstTimestamp: '0', magicByte: 2 });
      expect(r.key === null ? null : Buffer.from(r.key)).toEqual(c.key === null ? null : Buffer.from(c.key));
      expect(Buffer.from(r.value)).toEqual(c.value);
      expect(r.offset).toBe(String(c.offsetDelta));
      expect(r.timestamp).toBe(String(c.timestampDelta));
      expect(Object.keys(r.headers)).toEqual(Object.keys(c.headers ?? {}));
    }
  });

  it('groups messages per partition keeping their order', () => {
    const messages = Array.from({ length: 1000 }, (_, i) => ({ key: `k${i % 37}` }));
    const partitioner = ({ message }: { message: { key: string } }) => Number(message.key.slice(1)) % 5;
    const grouped = groupMessagesPerPartition({ topic: 't', partitionMetadata: [{}], messages, partitioner });
    expect(Object.keys(grouped).sort()).toEqual(['0', '1', '2', '3', '4']);
    for (const [p, list] of Object.entries(grouped))
      expect(list).toEqual(messages.filter((m) => partitioner({ message: m }) === Number(p)));
    expect(groupMessagesPerPartition({ topic: 't', partitionMetadata: [], messages, partitioner })).toEqual({});
  });
});

describe('the patched kafkajs decoding', () => {
  const cases: { firstOffset: bigint; firstTimestamp: bigint; deltas: bigint[] }[] = [
    { firstOffset: 0n, firstTimestamp: 1_765_000_000_000n, deltas: [0n, 5n, -3n, 2n ** 33n, 2n ** 50n, -(2n ** 52n)] },
    // sums crossing 2^53: Long's arithmetic
    { firstOffset: 2n ** 53n - 3n, firstTimestamp: 2n ** 53n - 2n, deltas: [0n, 1n, 2n, 3n, -(2n ** 53n)] },
    { firstOffset: 9_223_372_036_854_775_000n, firstTimestamp: 1n, deltas: [0n, 10n, 2n ** 62n] },
    { firstOffset: 77n, firstTimestamp: -5n, deltas: [0n, -1n] },
  ];

  it('decodes record batches to the offsets, timestamps, keys, values and headers encoded', async () => {
    for (const c of cases) {
      const records = c.deltas.map((timestampDelta, i) => ({
        offsetDelta: i * 3,
        timestampDelta: Long.fromValue(timestampDelta),
        key: i % 2 ? null : randomBytes(8),
        value: i === 1 ? null : randomBytes(i * 150),
        headers: i === 2 ? { a: 'x', b: ['y', 'z'] } : {},
      }));
      const encoded = await RecordBatch({
        firstOffset: Long.fromValue(c.firstOffset),
        firstTimestamp: Long.fromValue(c.firstTimestamp),
        maxTimestamp: Long.fromValue(c.firstTimestamp),
        lastOffsetDelta: (c.deltas.length - 1) * 3,
        records: records.map((r) => Record(r)),
      });
      const batch = await decodeBatch(new Decoder(encoded.buffer));
      expect(batch.records).toHaveLength(records.length);
      batch.records.forEach((r, i) => {
        const source = records[i]!;
        expect(r.offset).toBe(String(c.firstOffset + BigInt(source.offsetDelta)));
        expect(r.timestamp).toBe(String(c.firstTimestamp + c.deltas[i]!));
        expect(r.key === null ? null : Buffer.from(r.key)).toEqual(source.key);
        expect(r.value === null ? null : Buffer.from(r.value)).toEqual(source.value);
        const headers = r.headers as Record<string, Buffer | Buffer[]>;
        expect(Object.getPrototypeOf(headers)).toBe(Object.prototype);
        expect(Object.keys(headers)).toEqual(Object.keys(source.headers));
        for (const [k, v] of Object.entries(source.headers)) {
          const got = headers[k]!;
          expect(Array.isArray(got) ? got.map(String) : String(got)).toEqual(v);
        }
      });
    }
  });

  it("keeps a batch's messages at or after the fetched offset, as Long compares them", () => {
    const offsets = ['5', '6', '9007199254740991', '9007199254740993', '9223372036854775807', '10', '007'];
    for (const fetched of ['0', '6', '9', '9007199254740992', '9223372036854775806', '7']) {
      const batch = new Batch('t', fetched, {
        partition: 0,
        highWatermark: '0',
        messages: offsets.map((offset) => ({ offset })),
        abortedTransactions: [],
      });
      expect(batch.messages.map((m) => m.offset)).toEqual(offsets.filter((o) => BigInt(o) >= BigInt(fetched)));
    }
  });
});

/**
 * The consume loop's fetch ahead (fetcher.js): a batch fetched while the ones in hand were processed is
 * used only when it is what an ordinary fetch would ask for now (consumerGroup.js `takeFetchedAhead`).
 * kafkajs's own ConsumerGroup, OffsetManager and Batch, with positions resolved as the runner resolves them.
 */
describe('the patched kafkajs fetch ahead', () => {
  type BatchInstance = { topic: string; partition: number; fetchedOffset: string };
  type Group = {
    generationId: number;
    memberId: string;
    offsetManager: unknown;
    subscriptionState: { assign(tp: { topic: string; partitions: number[] }[]): void };
    resolveOffset(o: { topic: string; partition: number; offset: string }): void;
    seek(o: { topic: string; partition: number; offset: string }): void;
    pause(tp: { topic: string; partitions: number[] }[]): void;
    resume(tp: { topic: string; partitions: number[] }[]): void;
    fetchAheadEpoch(): object;
    takeFetchedAhead(batches: BatchInstance[], epoch: object): BatchInstance[] | undefined;
    fetch(nodeId: number, options: { ahead?: Map<string, string> }): Promise<BatchInstance[] | undefined>;
  };
  /* eslint-disable @typescript-eslint/no-require-imports -- kafkajs's internals have no typings */
  const ConsumerGroup = require('kafkajs/src/consumer/consumerGroup') as new (o: object) => Group;
  const OffsetManager = require('kafkajs/src/consumer/offsetManager') as new (o: object) => unknown;
  const Cluster = require('kafkajs/src/cluster') as new (o: object) => unknown;
  const Batch = require('kafkajs/src/consumer/batch') as new (
    topic: string,
    fetchedOffset: string,
    data: object,
  ) => BatchInstance;
  /* eslint-enable @typescript-eslint/no-require-imports */
  const quiet = { namespace: () => quiet, info() {}, debug() {}, warn() {}, error() {} };

  /** A member of generation 1 holding partitions 0 and 1 of `t`, each processed up to offset 9. */
  const member = () => {
    // Never connected: it only keeps the group's committed offsets here.
    const cluster = new Cluster({ logger: quiet, brokers: ['127.0.0.1:9'], retry: { retries: 0 } });
    const offsets = () =>
      new OffsetManager({ cluster, memberAssignment: { t: [0, 1] }, groupId: 'g', generationId: 1 });
    const group = new ConsumerGroup({ logger: quiet, cluster, topics: ['t'], retry: { retries: 0 }, groupId: 'g' });
    group.generationId = 1;
    group.memberId = 'm';
    group.subscriptionState.assign([{ topic: 't', partitions: [0, 1] }]);
    group.offsetManager = offsets();
    for (const partition of [0, 1]) group.resolveOffset({ topic: 't', partition, offset: '9' });
    return { group, offsets };
  };
  const batch = (partition: number, fetchedOffset: string) =>
    new Batch('t', fetchedOffset, { partition, highWatermark: '20', messages: [] });

  it('keeps a batch fetched from where its partition now stands, drops one fetched from elsewhere', () => {
    const { group } = member();
    const epoch = group.fetchAheadEpoch();
    const taken = group.takeFetchedAhead([batch(0, '10'), batch(1, '15')], epoch);
    expect(taken?.map((b) => [b.partition, b.fetchedOffset])).toEqual([[0, '10']]);
    // A batch in hand that was not processed through (a retry, a stop) leaves its partition behind.
    expect(group.takeFetchedAhead([batch(1, '15')], epoch)).toBeUndefined();
  });

  it('uses nothing after a rebalance, a seek, or for a paused or unassigned partition', () => {
    const { group: rejoined } = member();
    const epoch = rejoined.fetchAheadEpoch();
    rejoined.generationId = 2;
    expect(rejoined.takeFetchedAhead([batch(0, '10')], epoch)).toBeUndefined();

    const { group: resynced, offsets } = member();
    const before = resynced.fetchAheadEpoch();
    resynced.offsetManager = offsets();
    expect(resynced.takeFetchedAhead([batch(0, '10')], before)).toBeUndefined();

    const { group: sought } = member();
    sought.seek({ topic: 't', partition: 1, offset: '3' });
    expect(sought.takeFetchedAhead([batch(0, '10')], sought.fetchAheadEpoch())).toBeUndefined();

    const { group: paused } = member();
    paused.pause([{ topic: 't', partitions: [0] }]);
    expect(paused.takeFetchedAhead([batch(0, '10')], paused.fetchAheadEpoch())).toBeUndefined();
    expect(paused.takeFetchedAhead([batch(0, '10'), batch(1, '10')], paused.fetchAheadEpoch())).toHaveLength(1);

    const { group: revoked } = member();
    const held = revoked.fetchAheadEpoch();
    revoked.subscriptionState.assign([{ topic: 't', partitions: [1] }]);
    expect(revoked.takeFetchedAhead([batch(0, '10')], held)).toBeUndefined();
  });

  it('still fetches ahead when the only seek waiting is for a partition this member no longer holds', async () => {
    // A seek kept for partition 2, revoked before a fetch applied it: only a fetch of partition 2 pops it.
    const { group } = member();
    group.seek({ topic: 't', partition: 2, offset: '3' });
    const epoch = group.fetchAheadEpoch();
    expect(group.takeFetchedAhead([batch(0, '10')], epoch)?.map((b) => b.partition)).toEqual([0]);

    // The fetch ahead itself asks the broker for the held partitions (kafkajs's fetch, its cluster stubbed).
    const asked: { topic: string; partitions: { partition: number; fetchOffset: string }[] }[][] = [];
    const cluster = {
      refreshMetadataIfNecessary: async () => undefined,
      findTopicPartitionMetadata: () => [0, 1].map((partitionId) => ({ partitionId, leader: 1 })),
      findBroker: async () => ({
        fetch: async ({ topics }: { topics: (typeof asked)[number] }) => (asked.push(topics), { responses: [] }),
      }),
    };
    Object.assign(group, { cluster, checkForStaleAssignment: () => undefined });
    group.offsetManager = Object.assign(group.offsetManager as object, {
      committedOffsets: () => ({ t: { 0: '9', 1: '9' } }),
    });
    const ahead = new Map([['t|0', '10']]);
    expect(await group.fetch(1, { ahead })).toEqual([]);
    expect(asked).toHaveLength(1);
    expect(asked[0]![0]!.partitions.map((p) => [p.partition, p.fetchOffset])).toEqual([
      [0, '10'],
      [1, '10'],
    ]);

    // A seek for a partition it holds still holds the fetch ahead back (the ordinary fetch applies it).
    group.seek({ topic: 't', partition: 1, offset: '3' });
    expect(await group.fetch(1, { ahead })).toBeUndefined();
    expect(asked).toHaveLength(1);
    expect(group.takeFetchedAhead([batch(0, '10')], epoch)).toBeUndefined();
  });
});

/**
 * The fetcher's loop (fetcher.js) stopped while a fetch ahead is in flight: it ends only once that fetch has
 * answered, so the consumer's disconnect (which follows the fetchers' end) leaves nothing running behind it.
 */
describe('the patched kafkajs fetcher, stopped during a fetch ahead', () => {
  type Fetcher = { start(): Promise<void>; stop(): Promise<void> };
  /* eslint-disable @typescript-eslint/no-require-imports -- kafkajs's internals have no typings */
  const createFetcher = require('kafkajs/src/consumer/fetcher') as (o: object) => Fetcher;
  /* eslint-enable @typescript-eslint/no-require-imports */
  const quiet = { namespace: () => quiet, info() {}, debug() {}, warn() {}, error() {} };
  const batch = {
    topic: 't',
    partition: 0,
    isEmpty: () => false,
    isEmptyDueToFiltering: () => false,
    lastOffset: () => '4',
    offsetLag: () => '0',
  };

  it.each([
    ['answers', (settle: { resolve(v: unknown): void }) => settle.resolve([])],
    ['fails', (settle: { reject(e: Error): void }) => settle.reject(new Error('connection closed'))],
  ])('waits for a fetch ahead that then %s before it ends, and calls nothing after', async (_, settle) => {
    const order: string[] = [];
    let aheadFetch!: { resolve(v: unknown): void; reject(e: Error): void };
    let handed!: () => void;
    const pushed = new Promise<void>((r) => (handed = r));
    let release!: () => void;
    const processed = new Promise<void>((r) => (release = r));
    const fetcher = createFetcher({
      nodeId: 1,
      partitionAssignments: new Map(),
      logger: quiet,
      workerQueue: { push: async () => (handed(), processed) },
      fetch: async (_node: number, options?: { ahead?: Map<string, string> }) => {
        if (!options?.ahead) return (order.push('fetch'), [batch]);
        order.push(`fetch ahead from ${options.ahead.get('t|0')}`);
        return new Promise((resolve, reject) => (aheadFetch = { resolve, reject }));
      },
      ahead: {
        epoch: () => ({}),
        take: (batches: unknown[]) => (order.push('take'), batches),
      },
    });
    const started = fetcher.start().then(() => void order.push('fetcher ended'));
    await pushed;
    expect(order).toEqual(['fetch', 'fetch ahead from 5']);
    const stopped = fetcher.stop().then(() => void order.push('stopped'));
    release();
    await new Promise((r) => setTimeout(r, 50));
    // The batches in hand are processed and the loop has left, but the fetch ahead has not answered yet.
    expect(order).toEqual(['fetch', 'fetch ahead from 5']);
    settle(aheadFetch);
    await Promise.all([stopped, started]);
    await new Promise((r) => setTimeout(r, 50));
    // Its answer is dropped (never taken), and no fetch follows the stop.
    expect(order.slice(0, 2)).toEqual(['fetch', 'fetch ahead from 5']);
    expect(order.slice(2).sort()).toEqual(['fetcher ended', 'stopped']);
  });

  it('makes a stop() that arrives while a failed loop waits for its fetch ahead wait too', async () => {
    const order: string[] = [];
    let aheadFetch!: { resolve(v: unknown): void };
    let handed!: () => void;
    const pushed = new Promise<void>((r) => (handed = r));
    let fail!: (e: Error) => void;
    const processing = new Promise<void>((_, reject) => (fail = reject));
    const fetcher = createFetcher({
      nodeId: 1,
      partitionAssignments: new Map(),
      logger: quiet,
      workerQueue: { push: async () => (handed(), processing) },
      fetch: async (_node: number, options?: { ahead?: Map<string, string> }) => {
        if (!options?.ahead) return (order.push('fetch'), [batch]);
        order.push('fetch ahead');
        return new Promise((resolve) => (aheadFetch = { resolve }));
      },
      ahead: { epoch: () => ({}), take: (batches: unknown[]) => batches },
    });
    const started = fetcher.start().catch((e: Error) => void order.push(`fetcher failed: ${e.message}`));
    await pushed;
    // The worker fails: the loop stops running and waits for the fetch ahead still in flight.
    fail(new Error('worker failed'));
    await new Promise((r) => setTimeout(r, 20));
    const stopped = fetcher.stop().then(() => void order.push('stopped'));
    await new Promise((r) => setTimeout(r, 50));
    expect(order).toEqual(['fetch', 'fetch ahead']);
    aheadFetch.resolve([]);
    await Promise.all([stopped, started]);
    expect(order.slice(2).sort()).toEqual(['fetcher failed: worker failed', 'stopped']);
  });
});

/**
 * kafkajs 2.2.4's request queue scheduled its next pending-requests check even with nothing pending and no throttle,
 * at a negative delay (1 ms): every broker connection ran a 1 ms timer loop for its client's whole life (an idle
 * ingest spent ~0.03 of a core on it). Patched: such a queue schedules nothing; a waiting request or a throttle still
 * gets its check.
 */
describe('the request queue schedules checks only when something waits', () => {
  type Queue = {
    pending: unknown[];
    inflight: Map<number, unknown>;
    throttledUntil: number;
    throttleCheckTimeoutId: NodeJS.Timeout | null;
    checkPendingRequests(): void;
    scheduleCheckPendingRequests(): void;
    destroy(): void;
  };
  /* eslint-disable @typescript-eslint/no-require-imports -- kafkajs's internals have no typings */
  const RequestQueue = require('kafkajs/src/network/requestQueue') as new (o: object) => Queue;
  /* eslint-enable @typescript-eslint/no-require-imports */
  const quiet = { namespace: () => quiet, info() {}, debug() {}, warn() {}, error() {} };
  const queue = () =>
    new RequestQueue({
      maxInFlightRequests: 1,
      requestTimeout: 30_000,
      enforceRequestTimeout: false,
      clientId: 'test',
      broker: 'localhost:1',
      logger: quiet,
    });

  it('schedules no check with nothing pending and no throttle', async () => {
    const q = queue();
    let checks = 0;
    const check = q.checkPendingRequests.bind(q);
    q.checkPendingRequests = () => void (checks++, check());
    try {
      q.checkPendingRequests(); // as after a fulfilled request
      await new Promise((r) => setTimeout(r, 30));
    } finally {
      q.destroy();
    }
    expect(checks).toBe(1); // unpatched: one every millisecond or so
  });

  it('still checks a waiting request, and the end of a throttle', () => {
    const waiting = queue();
    waiting.inflight.set(1, {}); // its one request in flight: the next waits
    waiting.pending.push({});
    waiting.scheduleCheckPendingRequests();
    expect(waiting.throttleCheckTimeoutId).not.toBeNull();
    waiting.destroy();

    const throttled = queue();
    throttled.throttledUntil = Date.now() + 1000;
    throttled.scheduleCheckPendingRequests();
    expect(throttled.throttleCheckTimeoutId).not.toBeNull();
    throttled.destroy();
  });
});
