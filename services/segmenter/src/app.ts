import { buildOpsApp } from '@pstream/http';

/**
 * The HTTP face of this stream processor: /healthz, /readyz and /metrics. The work itself
 * happens in the consumer (processor.ts), started by main.ts.
 */
export const buildApp = buildOpsApp;
