import type { ProfileEvent } from '@pstream/events';
import { type ScoringParams } from '@pstream/scoring';
import { type Redis } from '@pstream/platform';
import type { Kafka } from 'kafkajs';
/** A small seeded PRNG (mulberry32), so a failing stream can be replayed from its seed. */
export declare function prng(seed: number): () => number;
export type Generated = {
    /** Native envelopes in per-person time order (a person's events are generated together). */
    events: Record<string, unknown>[];
    /** Profile keys of the people. */
    people: string[];
};
/**
 * A seeded stream of valid events for `people` people between `fromMs` and `toMs`: visits on a
 * pool of targets with clicks (and visits opened without one), dwell at the boundaries, actions,
 * second looks across the gap, visits on two targets interleaved, follows, repeated follows,
 * unfollows and re-follows, purchases, tagless events (for the catalog), and resent duplicates.
 */
export declare function generateStream(seed: number, people: number, fromMs: number, toMs: number, perPerson?: number): Generated;
/** Normalizes native envelopes as ingest does and produces them (acks=all), keyed by profile key. */
export declare function produceEvents(kafka: Kafka, topic: string, natives: Record<string, unknown>[], source?: string): Promise<ProfileEvent[]>;
export declare function produceRaw(kafka: Kafka, topic: string, messages: {
    key: string;
    value: string;
}[]): Promise<void>;
/** Every stored (forward) score of every person under `prefix`, read straight from Redis. */
export declare function storedScores(redis: Redis, prefix: string, people: string[]): Promise<Map<string, Map<string, number>>>;
/** How many events the scorer has recorded as applied for these people (their dedupe records). */
export declare function appliedCount(redis: Redis, prefix: string, people: string[]): Promise<number>;
/** Throws naming the first tag whose scores differ by more than `rel` relative. */
export declare function expectSameScores(got: Map<string, Map<string, number>>, want: Map<string, Map<string, number>>, rel?: number): void;
/** What the pure model (packages/scoring) gives for these messages, per person, deduped by event id. */
export declare function modelScores(messages: ProfileEvent[], params: ScoringParams, catalog?: ReadonlyMap<string, string[]>): Map<string, Map<string, number>>;
