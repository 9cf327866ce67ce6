import type { TopicMessage } from '@pstream/events';
import type { Kafka } from 'kafkajs';
import { waitFor } from './sandbox';

/** A small seeded PRNG (mulberry32, the traits model's own), so a failing stream can be replayed from its seed. */
export { seededRandom as prng } from '@pstream/traits-model';

/** Produces topic messages as ingest would: keyed by the profile key, acks=all. */
export async function produceMessages(kafka: Kafka, topic: string, messages: readonly TopicMessage[]): Promise<void> {
  const producer = kafka.producer();
  await producer.connect();
  try {
    for (let i = 0; i < messages.length; i += 500) {
      await producer.send({
        topic,
        acks: -1,
        messages: messages.slice(i, i + 500).map((m) => ({ key: m.profileKey, value: JSON.stringify(m) })),
      });
    }
  } finally {
    await producer.disconnect();
  }
}

/** Waits until every group has committed the topic's current end on every partition (all applied). */
export async function consumed(kafka: Kafka, topic: string, groups: string[], timeoutMs = 90_000): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]));
    for (const groupId of groups) {
      await waitFor(
        `${groupId} to consume ${topic}`,
        async () => {
          const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
          const at = new Map((committed?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
          return [...ends].every(([p, end]) => end === 0 || (at.get(p) ?? -1) >= end) ? true : undefined;
        },
        timeoutMs,
        100,
      );
    }
  } finally {
    await admin.disconnect();
  }
}

/** Produces ready key/value messages (acks=all), a thousand per request. */
export async function produceRaw(
  kafka: Kafka,
  topic: string,
  messages: { key: string; value: string }[],
): Promise<void> {
  const producer = kafka.producer();
  await producer.connect();
  try {
    for (let i = 0; i < messages.length; i += 1000)
      await producer.send({ topic, acks: -1, messages: messages.slice(i, i + 1000) });
  } finally {
    await producer.disconnect();
  }
}
