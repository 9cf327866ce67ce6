import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { FastifyInstance } from 'fastify';
import type { Admin, Consumer, Producer } from 'kafkajs';
import { createSandbox, type Sandbox, waitFor } from '@pstream/testkit';
import type { GroupLag, LagSampler, LagSnapshot, PartitionLag } from '../../src/lag/sampler';
import { kafkaClients, startOpsApp, type OpsRig } from '../ops-support';

const INTERVAL_MS = 200;
const WINDOW = 10;
const auth = { authorization: 'Bearer dev-api-token' };

/*
 * docs/api.md §5.8 against the real broker: a consumer that stays in its group but stops moving shows
 * STALL, a group that stopped committing shows STOP, a rewound group REWIND — each within one
 * window — in /ops/lag and /metrics; and the totals equal Kafka's own consumer-groups tool.
 */
describe('GET /ops/lag: Burrow’s statuses from a real broker', () => {
  let box: Sandbox;
  let admin: Admin;
  let producer: Producer;
  let sampler: LagSampler;
  let app: FastifyInstance;
  let rig: OpsRig;
  let topic: string;
  const group = (name: string) => `test-${box.id}-${name}`;
  const groups = () => ['stall', 'stop', 'rewind'].map(group);
  const consumers: Consumer[] = [];

  beforeAll(async () => {
    box = await createSandbox(3);
    topic = box.env.EVENTS_TOPIC!;
    rig = await startOpsApp(box, await kafkaClients(box), {
      groups: groups(),
      intervalMs: INTERVAL_MS,
      window: WINDOW,
    });
    ({ admin, producer, sampler, app } = rig);
  }, 60_000);

  afterAll(async () => {
    for (const c of consumers) await c.disconnect().catch(() => undefined);
    await rig?.close();
    await box?.cleanup();
  }, 60_000);

  const send = (partition: number, n: number) =>
    producer.send({
      topic,
      acks: -1,
      messages: Array.from({ length: n }, (_, i) => ({ partition, value: `{"n":${i}}` })),
    });
  const lag = async (): Promise<LagSnapshot> => {
    const res = await app.inject({ method: 'GET', url: '/ops/lag', headers: auth });
    expect(res.statusCode).toBe(200);
    return res.json();
  };
  const entry = (snapshot: LagSnapshot, name: string): GroupLag | undefined =>
    snapshot.groups.find((g) => g.group === group(name) && g.topic === topic);
  /** Waits (at most `withinWindow`) for a partition of a group to show `status`; resolves with the group. */
  const showing = (name: string, partition: number, status: PartitionLag['status']) =>
    waitFor(
      `partition ${partition} of the ${name} group to show ${status}`,
      async () => {
        const g = entry(await lag(), name);
        return g?.partitions[partition]?.status === status ? g : undefined;
      },
      withinWindow,
    );
  /** Waits until the sampler finished a round that began after now. */
  const freshSample = async () => {
    const after = sampler.rounds + 1;
    await waitFor('a fresh lag sample', async () => (sampler.rounds > after ? true : undefined), 20_000, 20);
  };
  /** How long a status may take to show: one full window of samples, plus slack for a slow machine. */
  const withinWindow = INTERVAL_MS * WINDOW * 5;

  it('needs the ops:read scope', async () => {
    expect((await app.inject({ method: 'GET', url: '/ops/lag' })).statusCode).toBe(401);
  });

  /**
   * A real consumer of the topic that commits what it handles until `holding()` says stop; then it
   * holds its batch without moving, heartbeating like a consumer retrying a failing write: alive,
   * in the group, going nowhere.
   */
  const holdingConsumer = async (name: string, holding: () => boolean) => {
    const consumer = box.kafka.consumer({ groupId: group(name), sessionTimeout: 30_000, heartbeatInterval: 1000 });
    consumers.push(consumer);
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: true,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning }) => {
        while (holding() && isRunning()) {
          await heartbeat();
          await new Promise((r) => setTimeout(r, 100));
        }
        for (const m of batch.messages) resolveOffset(m.offset);
      },
    });
    return consumer;
  };

  it('shows STALL for a consumer that stays in its group but stops moving, in /ops/lag and /metrics', async () => {
    await send(0, 5);
    let stuck = false;
    await holdingConsumer('stall', () => stuck);
    const caughtUp = await waitFor('the stall group to commit its first 5 messages', async () => {
      const g = entry(await lag(), 'stall');
      return g?.partitions[0]?.committed === 5 && g.partitions[0].lag === 0 ? g : undefined;
    });
    expect(caughtUp.status).toBe('OK');
    stuck = true;
    await send(0, 7);
    const started = Date.now();
    const stalled = await showing('stall', 0, 'STALL');
    expect(Date.now() - started).toBeLessThan(withinWindow);
    expect(stalled).toMatchObject({ status: 'ERR', lag: 7 });
    expect(stalled.partitions[0]).toMatchObject({ partition: 0, committed: 5, end: 12, lag: 7 });
    const text = await (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).toContain(
      `ops_lag_stalled_partitions{group="${group('stall')}",topic="${topic}",service="query-api"} 1`,
    );
    expect(text).toContain(
      `ops_lag_partition_status{group="${group('stall')}",topic="${topic}",partition="0",status="STALL",service="query-api"} 1`,
    );
    expect(text).toContain(
      `ops_lag_messages{group="${group('stall')}",topic="${topic}",partition="0",service="query-api"} 7`,
    );
  }, 90_000);

  it('shows STOP for a group that committed once and then stopped while events keep arriving', async () => {
    await send(1, 4);
    await admin.setOffsets({ groupId: group('stop'), topic, partitions: [{ partition: 1, offset: '2' }] });
    await send(1, 3);
    const stopped = await showing('stop', 1, 'STOP');
    expect(stopped).toMatchObject({ status: 'ERR', lag: 5 });
  }, 60_000);

  it('shows REWIND when a group’s committed offset moves backwards', async () => {
    await send(2, 10);
    // a live member of the group, holding its first batch; it commits by hand, as a consumer does
    const consumer = await holdingConsumer('rewind', () => true);
    await waitFor('the rewind consumer to commit offset 8', () =>
      consumer.commitOffsets([{ topic, partition: 2, offset: '8' }]).then(() => true),
    );
    await waitFor('the rewind group at offset 8', async () =>
      entry(await lag(), 'rewind')?.partitions[2]?.committed === 8 ? true : undefined,
    );
    await freshSample();
    await consumer.commitOffsets([{ topic, partition: 2, offset: '3' }]);
    const rewound = await showing('rewind', 2, 'REWIND');
    expect(rewound).toMatchObject({ status: 'ERR', lag: 7 });
    expect(rewound.partitions[2]).toMatchObject({ committed: 3, end: 10, lag: 7 });
  }, 60_000);

  it('reports the same totals as Kafka’s kafka-consumer-groups --describe at the same moment', async () => {
    // Nothing produces or commits now (the stall consumer holds its batch), so one fresh sample
    // and the tool's answer describe the same moment.
    await freshSample();
    const snapshot = await lag();
    for (const name of ['stall', 'stop', 'rewind']) {
      const ours = entry(snapshot, name)!;
      const theirs = await describeGroup(group(name));
      const rows = theirs.filter((r) => r.topic === topic);
      expect(rows.length).toBeGreaterThan(0);
      const total = rows.reduce((sum, r) => sum + (r.lag ?? 0), 0);
      expect({ group: name, lag: ours.lag }).toEqual({ group: name, lag: total });
      for (const r of rows.filter((row) => row.current !== null)) {
        expect(ours.partitions.find((p) => p.partition === r.partition)).toMatchObject({
          committed: r.current,
          end: r.end,
          lag: r.lag,
        });
      }
    }
  }, 90_000);
});

type ToolRow = { topic: string; partition: number; current: number | null; end: number; lag: number | null };

/** Runs Kafka's own ConsumerGroupCommand (kafka-consumer-groups.sh) from the jars infra:up fetched. */
async function describeGroup(groupId: string): Promise<ToolRow[]> {
  const root = join(__dirname, '..', '..', '..', '..');
  const { stdout } = await promisify(execFile)(
    join(root, 'infra', 'kafka', 'broker.sh'),
    [
      'run',
      'org.apache.kafka.tools.consumer.group.ConsumerGroupCommand',
      '--bootstrap-server',
      process.env.KAFKA_BROKERS!.split(',')[0]!,
      '--describe',
      '--group',
      groupId,
    ],
    { timeout: 60_000 },
  );
  const lines = stdout.split('\n').filter((l) => l.trim().length > 0);
  const header = lines.findIndex((l) => /^GROUP\s+TOPIC\s+PARTITION/.test(l));
  if (header < 0) throw new Error(`unexpected consumer-groups output:\n${stdout}`);
  const cols = lines[header]!.trim().split(/\s+/);
  const num = (v: string | undefined) => (v === undefined || v === '-' ? null : Number(v));
  return lines.slice(header + 1).map((line) => {
    const cells = line.trim().split(/\s+/);
    const at = (name: string) => cells[cols.indexOf(name)];
    return {
      topic: at('TOPIC')!,
      partition: Number(at('PARTITION')),
      current: num(at('CURRENT-OFFSET')),
      end: Number(at('LOG-END-OFFSET')),
      lag: num(at('LAG')),
    };
  });
}
