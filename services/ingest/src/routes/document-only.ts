/**
 * Route options for the tracking routes: their `schema.body` documents the request (OpenAPI is
 * generated from it) but Fastify must not validate the body as a whole — one bad event would
 * refuse the batch. The handlers validate each item with the same zod schemas instead.
 */
export const documentOnly = {
  validatorCompiler: () => (data: unknown) => ({ value: data }),
};
