import type { TopicMessage } from '@pstream/events';
import type { Keyring } from '@pstream/platform';
import type { Kafka } from 'kafkajs';
import { waitFor } from './helpers';

/** The seeded generator of the scorer's tests (mulberry32): the same seed gives the same stream. */
export { prng } from '../services/scorer/test/support';

/** Produces topic messages as ingest would: keyed by the profile key, acks=all. */
export async function produceMessages(kafka: Kafka, topic: string, messages: readonly TopicMessage[]): Promise<void> {
  const producer = kafka.producer();
  await producer.connect();
  try {
    for (let i = 0; i < messages.length; i += 500) {
      await producer.send({ topic, acks: -1, messages: messages.slice(i, i + 500).map((m) => ({ key: m.profileKey, value: JSON.stringify(m) })) });
    }
  } finally {
    await producer.disconnect();
  }
}

/**
 * A message of a sealed topic (every topic is sealed per person: docs/privacy.md) as JSON, read
 * as a downstream consumer reads it; undefined for an erased person's.
 */
export async function openJson<T>(keyring: Pick<Keyring, 'open'>, value: Buffer | null): Promise<T | undefined> {
  const [o] = await keyring.open([value]);
  if (o?.kind === 'opened') return JSON.parse(o.plaintext.toString('utf8')) as T;
  if (o?.kind === 'clear') return JSON.parse(value!.toString('utf8')) as T;
  return undefined;
}

/** Waits until every group has committed the topic's current end on every partition (all applied). */
export async function consumed(kafka: Kafka, topic: string, groups: string[], timeoutMs = 90_000): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]));
    for (const groupId of groups) {
      await waitFor(`${groupId} to consume ${topic}`, async () => {
        const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
        const at = new Map((committed?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
        return [...ends].every(([p, end]) => end === 0 || (at.get(p) ?? -1) >= end) ? true : undefined;
      }, timeoutMs, 100);
    }
  } finally {
    await admin.disconnect();
  }
}
