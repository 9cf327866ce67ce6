/**
 * Stream generators and readers that know the event contract and the stores: seeded streams of
 * native envelopes normalized as ingest does, the predicted-trait streams, a sealed message opened.
 * Depends on ingest's dialects and the stores, so the tests of those may not use it (their own
 * tests use the core, `@pstream/testkit`).
 */
export { appliedCount, generateStream, produceEvents, storedScores, type Generated } from './generate';
export * from './predicted';
export { openJson } from './sealed';
