import { z } from 'zod';
import { BatchConsumer, type Consumed } from '../src';
import { createSandbox, silentLog, waitFor, type Sandbox } from '../../../test/helpers';

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
});
