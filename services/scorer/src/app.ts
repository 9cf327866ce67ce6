import { buildOpsApp } from '@pstream/http';

/**
 * The HTTP face of this stream processor: /healthz, /readyz and /metrics. The work itself
 * happens in the consumer (processor.ts), started by main.ts.
 * Its errors carry `SCR_` codes: the framework's list of @pstream/http (`httpErrors('SCR')`).
 */
export const buildApp = (deps: Omit<Parameters<typeof buildOpsApp>[0], 'prefix'>) =>
  buildOpsApp({ ...deps, prefix: 'SCR' });
