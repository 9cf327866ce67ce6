import { buildOpsApp } from '@pstream/platform';

/**
 * The HTTP face of this stream processor: /healthz, /readyz and /metrics. The work itself
 * happens in the consumer (processor.ts), started by main.ts.
 */
export const buildApp = buildOpsApp;
