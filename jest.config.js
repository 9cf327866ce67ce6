/**
 * Two projects: `unit` (pure logic, no servers) and `integration` (`*.int.test.ts`, against real
 * Kafka, Redis and Postgres; see test/global-setup.ts for where those come from).
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
    {
      displayName: 'unit',
      transform,
      transformIgnorePatterns,
      testEnvironment: 'node',
      testMatch: ['<rootDir>/{packages,services}/*/test/**/*.test.ts', '<rootDir>/test/**/*.test.ts'],
      testPathIgnorePatterns: ['\\.int\\.test\\.ts$'],
    },
    {
      displayName: 'integration',
      transform,
      transformIgnorePatterns,
      testEnvironment: 'node',
      testMatch: ['<rootDir>/{packages,services,scripts}/*/test/**/*.int.test.ts', '<rootDir>/test/**/*.int.test.ts'],
      globalSetup: '<rootDir>/test/global-setup.ts',
      globalTeardown: '<rootDir>/test/global-teardown.ts',
      slowTestThreshold: 30,
      // Hooks too: cleaning up a sandbox (Redis keys, a schema) can take seconds on a busy machine.
      testTimeout: 60_000,
    },
  ],
};
