import type { z } from 'zod';
import { trackingResponses, writeKeySecurity } from '../schemas';

/**
 * Options of every tracking route. `schema.body` documents the request (OpenAPI is generated from
 * it) but Fastify must not validate the body as a whole — one bad event would refuse the batch —
 * so the validator passes it through and the handlers validate each item with the same zod schemas.
 */
export function trackingRoute(operationId: string, tags: string[], summary: string, body: z.ZodType) {
  return {
    validatorCompiler: () => (data: unknown) => ({ value: data }),
    schema: { operationId, tags, summary, security: writeKeySecurity, body, response: trackingResponses },
  };
}
