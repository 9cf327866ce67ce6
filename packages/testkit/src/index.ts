/**
 * The test kit's core: what every package's and service's tests use to get an isolated slice of the
 * real servers and to wait on conditions. It depends on no workspace package but the topic contract,
 * so any package's tests may use it. Stream generators are `@pstream/testkit/streams`, service
 * starters `@pstream/testkit/services`, the browser `@pstream/testkit/browser`.
 */
export { loadDefaultEnv } from './env';
export { readTopic, randomPort, throwawayBroker } from './kafka';
export { startThrowawayPostgres } from './postgres';
export {
  metricSample,
  promtool,
  promtoolPath,
  prometheusPath,
  prometheusUnavailable,
  promtoolUnavailable,
} from './promtool';
export { REPO_ROOT } from './root';
export { createSandbox, freePort, silentLog, testId, testKafka, waitFor, type Sandbox } from './sandbox';
export { startTcpProxy } from './tcp-proxy';
export { consumed, prng, produceMessages, produceRaw } from './topics';
