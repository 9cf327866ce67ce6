/**
 * Moving an existing deployment to sealed topics (docs/privacy.md): copies a topic written in clear
 * into a new one where every record is sealed for its person and keyed by its subject, then
 * checks that the copy holds every source record exactly once. Used by `pnpm events:seal`.
 *
 * - **Order.** A source partition is copied in offset order and a person's records all sit in
 *   one source partition (it was keyed by the profile key), so each person's records reach their
 *   one target partition in the order they had.
 * - **Resumable, exactly once.** Each batch is sent in a Kafka transaction together with the copy
 *   group's offset on the source: a crash leaves either both or neither, and a rerun continues
 *   from the committed offset. The target is read with read_committed.
 * - **Erased people** (their ids' keys are tombstones) are copied sealed under throw-away keys:
 *   present exactly once, readable never.
 * - Each target record carries its source position in the header `pstream-source` (partition
 *   and offset only), which the check counts.
 */
import { createHash } from 'node:crypto';
import type { Kafka, KafkaMessage } from 'kafkajs';
import type { Logger } from 'pino';
import { isSealed, type Keyring } from './keyring';

export type SealProgress = { done: number; total: number };
export type SealTopicOptions = {
  kafka: Kafka;
  keyring: Pick<Keyring, 'seal' | 'open'>;
  from: string;
  to: string;
  log: Logger;
  onProgress?: (p: SealProgress) => void;
  pollMs?: number;
  /** Every real id a clear record's message names (ingest's rule), so it is sealed under all their keys. */
  names?: (value: Buffer | null) => string[];
};

const HEADER = 'pstream-source';
/** The copy group of a pair of topics: stable, so a rerun resumes it. */
export const copyGroup = (from: string, to: string) => `pstream-seal.${from}.${to}`;

/** The profile key of a clear record: its key, else the message's `profileKey`. */
function profileKeyOf(message: KafkaMessage): string {
  const key = message.key?.toString('utf8');
  if (key) return key;
  try {
    const parsed = JSON.parse(message.value?.toString('utf8') ?? '') as { profileKey?: unknown };
    if (typeof parsed.profileKey === 'string' && parsed.profileKey !== '') return parsed.profileKey;
  } catch {
    // fall through: sealed for a key of its own below
  }
  // Neither a key nor a profile key (not a message of ours): sealed under its position, which no
  // erasure will ever name, so it stays as readable as it was to whoever holds the keys.
  return `pstream-unkeyed:${message.offset}`;
}

/**
 * Copies `from` into `to` (created with the same partitions and retention.ms=-1 when missing) up to `from`'s end at the
 * start.
 */
export async function sealTopic(options: SealTopicOptions): Promise<SealProgress> {
  const { kafka, from, to, log } = options;
  const group = copyGroup(from, to);
  const admin = kafka.admin();
  await admin.connect();
  const producer = kafka.producer({ transactionalId: `pstream-seal.${to}`, idempotent: true, maxInFlightRequests: 1 });
  const consumer = kafka.consumer({ groupId: group, readUncommitted: false });
  try {
    const source = await admin.fetchTopicOffsets(from);
    if ((await admin.listTopics()).includes(to)) {
      const [meta] = (await admin.fetchTopicMetadata({ topics: [to] })).topics;
      if (meta!.partitions.length !== source.length)
        throw new Error(
          `target topic ${to} has ${meta!.partitions.length} partitions, the source ${source.length}: create it with the same number`,
        );
    } else {
      await admin.createTopics({
        waitForLeaders: true,
        topics: [{ topic: to, numPartitions: source.length, configEntries: [{ name: 'retention.ms', value: '-1' }] }],
      });
      log.info({ topic: to, partitions: source.length }, 'seal: target topic created');
    }
    const ends = new Map(source.map((p) => [p.partition, BigInt(p.high)]));
    const lows = new Map(source.map((p) => [p.partition, BigInt(p.low)]));
    const total = source.reduce((s, p) => s + Number(BigInt(p.high) - BigInt(p.low)), 0);
    const progress = async (): Promise<SealProgress> => {
      const [committed] = await admin.fetchOffsets({ groupId: group, topics: [from] });
      let done = 0;
      for (const p of committed?.partitions ?? []) {
        const at = BigInt(p.offset) < 0n ? lows.get(p.partition)! : BigInt(p.offset);
        done += Number((at < ends.get(p.partition)! ? at : ends.get(p.partition)!) - lows.get(p.partition)!);
      }
      return { done: Math.max(0, done), total };
    };
    let p = await progress();
    options.onProgress?.(p);
    if (p.done >= total) return p;

    await producer.connect();
    await consumer.connect();
    await consumer.subscribe({ topic: from, fromBeginning: true });
    let failed: unknown;
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        const end = ends.get(batch.partition) ?? 0n;
        const messages = batch.messages.filter((m) => BigInt(m.offset) < end);
        if (messages.length === 0 || !isRunning() || isStale()) return;
        try {
          const clear = messages.filter((m) => !isSealed(m.value));
          const sealed = await options.keyring.seal(
            clear.map((m) => ({
              key: profileKeyOf(m),
              value: m.value ?? Buffer.alloc(0),
              names: options.names?.(m.value),
            })),
          );
          const byOffset = new Map(clear.map((m, i) => [m.offset, sealed[i]!]));
          const out = messages.map((m) => {
            const s = byOffset.get(m.offset);
            // Already sealed (a topic that was partly moved): copied as it is.
            const record = s ?? { key: m.key?.toString('utf8') ?? null, value: m.value };
            return { ...record, headers: { [HEADER]: `${batch.partition}:${m.offset}` } };
          });
          const last = messages[messages.length - 1]!.offset;
          const tx = await producer.transaction();
          try {
            await tx.send({ topic: to, messages: out });
            await tx.sendOffsets({
              consumerGroupId: group,
              topics: [
                { topic: from, partitions: [{ partition: batch.partition, offset: (BigInt(last) + 1n).toString() }] },
              ],
            });
            await tx.commit();
          } catch (err) {
            await tx.abort().catch(() => undefined);
            throw err;
          }
          resolveOffset(last);
          await heartbeat();
        } catch (err) {
          failed = err;
          throw err;
        }
      },
    });
    for (;;) {
      p = await progress();
      options.onProgress?.(p);
      if (p.done >= total) return p;
      if (failed) throw failed;
      await new Promise((r) => setTimeout(r, options.pollMs ?? 1000));
    }
  } finally {
    await consumer.disconnect().catch(() => undefined);
    await producer.disconnect().catch(() => undefined);
    await admin.disconnect();
  }
}

export type CopyCheck = {
  /** Source records (up to its end now) and target records read. */
  source: number;
  target: number;
  /** Source positions with no copy, and with more than one. */
  missing: number;
  duplicated: number;
  /** Target records not sealed. */
  clear: number;
  /** Copies that open and equal their source record byte for byte. */
  equal: number;
  /** Copies that open to something else than their source record. */
  different: number;
  /** Copies of erased people: present, unreadable by design. */
  shredded: number;
};

/** Reads every record of `topic` up to its current end, committed only, in one pass per partition. */
async function readAll(
  kafka: Kafka,
  topic: string,
  each: (partition: number, message: KafkaMessage) => void,
): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  const offsets = await admin.fetchTopicOffsets(topic);
  const ends = new Map(offsets.map((p) => [p.partition, BigInt(p.high)]));
  const total = offsets.reduce((s, p) => s + Number(BigInt(p.high) - BigInt(p.low)), 0);
  const groupId = `pstream-seal-check.${topic}.${Date.now()}`;
  const consumer = kafka.consumer({ groupId, readUncommitted: false });
  let seen = 0;
  const reached = new Map(offsets.map((p) => [p.partition, BigInt(p.low) >= BigInt(p.high)]));
  try {
    if (total > 0) {
      await consumer.connect();
      // Transaction markers take offsets too, and are never delivered as messages: a partition is
      // read once a batch (markers included, as kafkajs reports it) reached the end.
      consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
        if (BigInt(payload.lastOffset) + 1n >= ends.get(payload.partition)!) reached.set(payload.partition, true);
      });
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ partition, message }) => {
          if (BigInt(message.offset) >= ends.get(partition)!) return;
          seen += 1;
          each(partition, message);
        },
      });
      while (![...reached.values()].every(Boolean)) await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await consumer.disconnect().catch(() => undefined);
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect();
  }
  return seen;
}

const digest = (value: Buffer | null) =>
  createHash('sha256')
    .update(value ?? Buffer.alloc(0))
    .digest('hex');

/**
 * Checks that `to` holds every record of `from` exactly once: each source position appears in
 * exactly one target header, every target record is sealed, and each copy that opens equals
 * its source record (erased people's copies cannot open, and are counted apart).
 */
export async function checkSealedCopy(
  kafka: Kafka,
  keyring: Pick<Keyring, 'open'>,
  from: string,
  to: string,
): Promise<CopyCheck> {
  const sourceDigest = new Map<string, string>();
  const source = await readAll(
    kafka,
    from,
    (partition, m) => void sourceDigest.set(`${partition}:${m.offset}`, digest(m.value)),
  );
  const copies = new Map<string, number>();
  const pending: { position: string; value: Buffer | null }[] = [];
  let clear = 0;
  const target = await readAll(kafka, to, (_partition, m) => {
    const position = m.headers?.[HEADER]?.toString() ?? '';
    copies.set(position, (copies.get(position) ?? 0) + 1);
    if (!isSealed(m.value)) clear += 1;
    pending.push({ position, value: m.value });
  });
  const check: CopyCheck = { source, target, missing: 0, duplicated: 0, clear, equal: 0, different: 0, shredded: 0 };
  for (const position of sourceDigest.keys()) {
    const n = copies.get(position) ?? 0;
    if (n === 0) check.missing += 1;
    if (n > 1) check.duplicated += n - 1;
  }
  for (let i = 0; i < pending.length; i += 1000) {
    const slice = pending.slice(i, i + 1000);
    const opened = await keyring.open(slice.map((r) => r.value));
    opened.forEach((o, j) => {
      const want = sourceDigest.get(slice[j]!.position);
      // A source record that was sealed already is copied byte for byte.
      if (want !== undefined && want === digest(slice[j]!.value)) check.equal += 1;
      else if (o.kind === 'shredded') check.shredded += 1;
      else if (o.kind === 'opened' && want === digest(o.plaintext)) check.equal += 1;
      else check.different += 1;
    });
  }
  return check;
}

/** True when the copy is complete and faithful. */
export const copyIsExact = (c: CopyCheck) =>
  c.missing === 0 && c.duplicated === 0 && c.clear === 0 && c.different === 0 && c.target === c.source;
