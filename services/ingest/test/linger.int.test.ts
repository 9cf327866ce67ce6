import { createSandbox, readTopic, silentLog, type Sandbox } from '@pstream/testkit';
import type { Kafka, Producer, ProducerRecord } from 'kafkajs';
import { KafkaPublisher } from '../src/publisher';

/**
 * PRODUCE_LINGER_MS: a request that finds a send slot free waits that long for other requests, and
 * they share one Kafka send; each is still answered only once Kafka acknowledged its records, and
 * stopping the publisher sends what lingers instead of dropping it. Real Kafka; the sends are
 * counted on the real producer.
 */
describe('KafkaPublisher linger', () => {
  jest.setTimeout(60_000);
  let box: Sandbox;
  beforeAll(async () => {
    box = await createSandbox(3);
  });
  afterAll(async () => {
    await box?.cleanup();
  });

  /** A publisher on the sandbox's topic whose producers report the size of every send. */
  function publisher(lingerMs: number) {
    const sends: number[] = [];
    const kafka = {
      producer: (config: Parameters<Kafka['producer']>[0]): Producer => {
        const producer = box.kafka.producer(config);
        const send = producer.send.bind(producer);
        producer.send = (record: ProducerRecord) => (sends.push(record.messages.length), send(record));
        return producer;
      },
    } as unknown as Kafka;
    const p = new KafkaPublisher({
      kafka,
      topic: box.env.EVENTS_TOPIC!,
      log: silentLog,
      timeoutMs: 10_000,
      breakerMs: 1000,
      lingerMs,
    });
    return { p, sends };
  }
  const record = (id: string) => ({ key: `person-${id}`, value: JSON.stringify({ id }) });
  const onTopic = (ids: string[]) =>
    readTopic<{ id: string }>(box.kafka, box.env.EVENTS_TOPIC!, (vs) => ids.every((id) => vs.some((v) => v.id === id)));

  it('puts requests arriving within the linger into one send, and answers each after its acks', async () => {
    const { p, sends } = publisher(300);
    await p.start();
    const started = Date.now();
    await Promise.all([p.publish([record('l-a')]), p.publish([record('l-b'), record('l-c')])]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(sends).toEqual([3]);
    await onTopic(['l-a', 'l-b', 'l-c']);
    await p.stop();
  });

  it('sends each request at once with a linger of 0', async () => {
    const { p, sends } = publisher(0);
    await p.start();
    await Promise.all([p.publish([record('n-a')]), p.publish([record('n-b')])]);
    expect(sends).toEqual([1, 1]);
    await p.stop();
  });

  it('sends what lingers when stopped, and the request is answered as acknowledged', async () => {
    const { p, sends } = publisher(30_000);
    await p.start();
    const published = p.publish([record('s-a')]);
    // Past the keyring-less seal and into the linger.
    await new Promise((r) => setImmediate(r));
    const started = Date.now();
    await p.stop();
    await expect(published).resolves.toBeUndefined();
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(sends).toEqual([1]);
    await onTopic(['s-a']);
  });
});
