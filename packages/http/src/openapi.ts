import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import {
  createJsonSchemaTransform,
  createJsonSchemaTransformObject,
  serializerCompiler,
  validatorCompiler,
} from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorBodySchema, fieldErrorSchema } from './errors';

export type OpenApiOptions = {
  title: string;
  version: string;
  description: string;
  /** Where the API is served; the first is the default of Swagger UI's "Try it out". */
  servers: { url: string; description: string }[];
  tags: { name: string; description: string }[];
  securitySchemes: Record<string, Record<string, unknown>>;
  /**
   * Schemas to publish under `components.schemas` by name; every route schema that uses one of
   * these zod objects refers to it (`$ref`) instead of inlining it. `Error` and `FieldError` are always there.
   */
  schemas?: Record<string, z.ZodType>;
};

/**
 * The same zod schemas validate requests, serialize responses and document the API: this plugin
 * sets the zod compilers, generates OpenAPI 3 from the routes (served at `/openapi.json`, with
 * Swagger UI at `/docs`), and publishes the named schemas as components. Register it before the
 * routes.
 */
export const openApiPlugin = fp(
  async (app: FastifyInstance, options: OpenApiOptions) => {
    // One registry per app: two apps in one process (tests) keep their component lists apart.
    const registry = z.registry<{ id: string }>();
    for (const [id, schema] of Object.entries({
      Error: errorBodySchema,
      FieldError: fieldErrorSchema,
      ...options.schemas,
    }))
      registry.add(schema, { id });
    const toObject = createJsonSchemaTransformObject({ schemaRegistry: registry });
    app.setValidatorCompiler(validatorCompiler);
    app.setSerializerCompiler(serializerCompiler);
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: { title: options.title, version: options.version, description: options.description },
        servers: options.servers,
        tags: options.tags,
        components: { securitySchemes: options.securitySchemes as never },
      },
      transform: describeResponses(createJsonSchemaTransform({ schemaRegistry: registry })),
      transformObject: (input) => withoutUnusedSchemas(toObject(input) as Document) as ReturnType<typeof toObject>,
    });
    await app.register(swaggerUi, { routePrefix: '/docs' });
    app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  },
  { name: 'pstream-openapi', fastify: '5.x' },
);

/** Error responses made by `errorResponse`, with the headers they document besides X-Request-Id. */
const errorResponses = new WeakMap<z.ZodType, Record<string, string>>();

/**
 * An error response of a route: the one error body (`$ref: Error`), described for this route and
 * status; `headers` documents the ones it sets (name → description), e.g. `Retry-After`.
 */
export function errorResponse(description: string, headers: Record<string, string> = {}): z.ZodType {
  const schema = errorBodySchema.describe(description);
  errorResponses.set(schema, headers);
  return schema;
}

const REQUEST_ID = {
  type: 'string',
  description: 'the request id: the client’s own X-Request-Id when it is a plain token, else a fresh UUID',
};

type Transform = ReturnType<typeof createJsonSchemaTransform>;

/**
 * Every response gets a real description (the zod schema's `.describe`, which OpenAPI would
 * otherwise lose behind a `$ref`) and the `X-Request-Id` header; error responses refer to the
 * shared `Error` component.
 */
function describeResponses(base: Transform): Transform {
  return (input) => {
    const response = (input.schema as { response?: Record<string, z.ZodType> } | undefined)?.response;
    if (!response) return base(input);
    const shared = Object.fromEntries(
      Object.entries(response).map(([status, s]) => [status, errorResponses.has(s) ? errorBodySchema : s]),
    );
    const out = base({ ...input, schema: { ...input.schema, response: shared } });
    const json = (out.schema as { response?: Record<string, Record<string, unknown>> }).response ?? {};
    for (const [status, s] of Object.entries(response)) {
      const description = s.description ?? z.globalRegistry.get(s)?.description;
      json[status] = {
        ...json[status],
        ...(description !== undefined && { description }),
        headers: {
          'X-Request-Id': REQUEST_ID,
          ...Object.fromEntries(
            Object.entries(errorResponses.get(s) ?? {}).map(([name, about]) => [
              name,
              { type: 'string', description: about },
            ]),
          ),
        },
      };
    }
    return out;
  };
}

type Document = { components?: { schemas?: Record<string, unknown> } };

/**
 * Drops component schemas nothing refers to. The zod provider publishes each named schema as a
 * request (`…Input`) and a response variant; an API uses one or both, and a listed but unused
 * schema only misleads readers (and fails the lint's no-unused-components).
 */
function withoutUnusedSchemas<T extends Document>(doc: T): T {
  const schemas = doc.components?.schemas;
  if (!schemas) return doc;
  // A component's `$id` ("#/components/schemas/X") makes its `$ref`s resolve against itself, which
  // OpenAPI tools (redocly's example check) cannot follow; the component's place is its identity.
  for (const schema of Object.values(schemas)) delete (schema as { $id?: string }).$id;
  for (;;) {
    const text =
      JSON.stringify({ ...doc, components: { ...doc.components, schemas: undefined } }) + JSON.stringify(schemas);
    const unused = Object.keys(schemas).filter((name) => {
      const ref = `"#/components/schemas/${name}"`;
      // Its own body cannot keep a schema alive.
      return text.split(ref).length - 1 === JSON.stringify(schemas[name]).split(ref).length - 1;
    });
    if (unused.length === 0) return doc;
    for (const name of unused) delete schemas[name];
  }
}
