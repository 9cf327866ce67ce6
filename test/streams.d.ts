import type { TopicMessage } from '@pstream/events';
import type { Kafka } from 'kafkajs';
/** The seeded generator of the scorer's tests (mulberry32): the same seed gives the same stream. */
export { prng } from '../services/scorer/test/support';
/** Produces topic messages as ingest would: keyed by the profile key, acks=all. */
export declare function produceMessages(kafka: Kafka, topic: string, messages: readonly TopicMessage[]): Promise<void>;
/** Waits until every group has committed the topic's current end on every partition (all applied). */
export declare function consumed(kafka: Kafka, topic: string, groups: string[], timeoutMs?: number): Promise<void>;
