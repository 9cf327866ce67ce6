/**
 * Service starters: ingest wired as its main.ts wires it, the whole pipeline in-process, the four
 * services as processes, and a typed client on an app. For the system tests (test/) and ingest's.
 */
export { startIngest, useIngest } from './ingest';
export * from './pipeline';
export * from './platform';
export * from './processes';
export * from './query-client';
