/**
 * Projects: `unit` (pure logic, no servers), `integration` (`*.int.test.ts`, against real
 * Kafka, Redis and Postgres; see packages/testkit/src/global-setup.ts for where those come from) and, only with
 * TEST_CLUSTER=1, `cluster` (`test/cluster/*.cluster.test.ts`, the multi-node stack).
 */
const transform = {
  '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } } }],
  // ESM-only dependencies (cookie, via Fastify's inject) are compiled to CommonJS for Jest.
  '^.+\\.js$': ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }],
};
const transformIgnorePatterns = ['/node_modules/(?!\\.pnpm/cookie@|cookie/)'];

/** @type {import('jest').Config} */
module.exports = {
  projects: [
    // `pnpm test:cluster` only (TEST_CLUSTER=1): the multi-node stack of `pnpm infra:up --cluster`.
    ...(process.env.TEST_CLUSTER === '1'
      ? [
          {
            displayName: 'cluster',
            transform,
            transformIgnorePatterns,
            testEnvironment: 'node',
            testMatch: ['<rootDir>/test/cluster/**/*.cluster.test.ts'],
          },
        ]
      : []),
    {
      displayName: 'unit',
      transform,
      transformIgnorePatterns,
      testEnvironment: 'node',
      testMatch: ['<rootDir>/{packages,services}/*/test/**/*.test.ts', '<rootDir>/test/**/*.test.ts'],
      testPathIgnorePatterns: ['\\.int\\.test\\.ts$', '\\.cluster\\.test\\.ts$'],
      // Property tests run thousands of cases (ingest's compiled check: 20 000, ~2 s idle); on a busy
      // 2-core machine that passed Jest's 5 s default once, so a unit test may take up to 30 s.
      testTimeout: 30_000,
    },
    {
      displayName: 'integration',
      transform,
      transformIgnorePatterns,
      testEnvironment: 'node',
      testMatch: ['<rootDir>/{packages,services,scripts}/*/test/**/*.int.test.ts', '<rootDir>/test/**/*.int.test.ts'],
      globalSetup: '<rootDir>/packages/testkit/src/global-setup.ts',
      globalTeardown: '<rootDir>/packages/testkit/src/global-teardown.ts',
      slowTestThreshold: 30,
      // Hooks too: cleaning up a sandbox (Redis keys, a schema) can take seconds on a busy machine.
      testTimeout: 60_000,
    },
  ],
};
