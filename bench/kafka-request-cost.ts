/*
 * Microbench (not a pnpm script): what one request costs the Kafka broker's JVM, by kind — the figure behind
 * "fewer, larger requests" (BENCHMARKS.md "Ingest and the broker at 5 000 events/s"). On a topic of its own
 * (12 partitions, like the events topic), for SECONDS each, the broker's CPU (/proc of whoever listens on the
 * broker's port) is read over: nothing of ours (its background, others' clients included); Produce requests of
 * RECORDS records of 420 bytes spread over the partitions, acks=all, one at a time (as ingest's idempotent producer
 * sends them); Fetch requests of a consumer that is caught up (minBytes 1, maxWait 0: each answered at once, empty);
 * Prints broker µs per request above the idle window, and kafkajs's request counts. Noisy on a
 * shared broker: run it a few times.
 */
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { cpuSeconds, listeningPid } from './proc-cpu';

const SECONDS = Number(process.env.SECONDS_EACH ?? 8);
const RECORDS = (process.env.RECORDS ?? '1,500').split(',').map(Number);
const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const port = Number(/:(\d+)$/.exec(brokers[0]!)?.[1] ?? 9092);
const prefix = process.env.BENCH_PREFIX ?? 'bench';

async function main() {
  const pid = listeningPid(port);
  if (pid === undefined) throw new Error(`nothing listens on ${port}`);
  const kafka = new Kafka({ clientId: `${prefix}-reqcost`, brokers, logLevel: logLevel.NOTHING });
  const topic = `${prefix}.reqcost.${randomBytes(3).toString('hex')}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 12 }] });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  let requests = 0;
  producer.on(producer.events.REQUEST, () => void requests++);
  const window = async (name: string, body: (until: number) => Promise<void>) => {
    requests = 0;
    const c0 = cpuSeconds(pid)!;
    const t0 = performance.now();
    await body(t0 + SECONDS * 1000);
    const s = (performance.now() - t0) / 1000;
    return { name, seconds: s, cpu: cpuSeconds(pid)! - c0, requests };
  };
  const value = randomBytes(420);
  const rows = [];
  const idle = await window('idle', (until) => new Promise((r) => setTimeout(r, until - performance.now())));
  rows.push(idle);
  for (const n of RECORDS) {
    const messages = Array.from({ length: n }, (_, i) => ({ key: `person-${i}`, value }));
    rows.push(
      await window(`Produce, ${n} records`, async (until) => {
        while (performance.now() < until) await producer.send({ topic, acks: -1, messages });
      }),
    );
  }
  const groupId = `${prefix}-reqcost-${randomBytes(3).toString('hex')}`;
  const consumer = kafka.consumer({ groupId, minBytes: 1, maxWaitTimeInMs: 0 });
  let fetches = 0;
  consumer.on(consumer.events.REQUEST, ({ payload }) => {
    if (payload.apiName === 'Fetch') fetches++;
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: false });
  let joined!: () => void;
  const ready = new Promise<void>((r) => (joined = r));
  consumer.on(consumer.events.GROUP_JOIN, () => joined());
  await consumer.run({ autoCommit: false, eachBatch: async () => undefined });
  await ready;
  await new Promise((r) => setTimeout(r, 1000));
  const f0 = fetches;
  const fetchRow = await window(
    'Fetch, caught up (empty)',
    (until) => new Promise((r) => setTimeout(r, until - performance.now())),
  );
  fetchRow.requests = fetches - f0;
  rows.push(fetchRow);
  await consumer.disconnect();
  await producer.disconnect();
  await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
  await admin.deleteGroups([groupId]).catch(() => undefined);
  await admin.disconnect();
  const idleRate = idle.cpu / idle.seconds;
  for (const r of rows) {
    const above = r.cpu - idleRate * r.seconds;
    console.log(
      `${r.name}: ${r.requests} requests in ${r.seconds.toFixed(1)} s (${(r.requests / r.seconds).toFixed(0)}/s), broker ${(r.cpu / r.seconds).toFixed(3)} cores` +
        (r === idle ? '' : `, ${((above / Math.max(r.requests, 1)) * 1e6).toFixed(0)} µs a request above idle`),
    );
  }
}
main().catch((err) => {
  console.error(err);
  process.exit(1);
});
