import fastJson from 'fast-json-stringify';
import { serializerCompiler as zodSerializerCompiler } from 'fastify-type-provider-zod';
import { z } from 'zod';

/**
 * A route's serializer compiler whose 2xx answers are written by a serializer compiled once from
 * the route's own response schema (fast-json-stringify, what Fastify uses by default), instead of
 * zod checking the whole answer again before `JSON.stringify` on every request. The handler
 * builds the answer from typed values, so the check could only fail on a bug; the compiled
 * serializer writes exactly the schema's keys in the schema's shape. Other statuses (the error
 * bodies) keep the zod serializer. For hot read routes only: see BENCHMARKS.md "Reads".
 */
export function compiledSuccessSerializer(route: {
  schema: unknown;
  method: string;
  url: string;
  httpStatus?: string;
}): (data: unknown) => string {
  const schema = route.schema as z.ZodType;
  if (!/^2\d\d$/.test(String(route.httpStatus))) return zodSerializerCompiler({ ...route, schema });
  const stringify = fastJson(
    z.toJSONSchema(schema, { target: 'draft-7', io: 'output', unrepresentable: 'any' }) as Parameters<
      typeof fastJson
    >[0],
  );
  return (data) => stringify(data);
}
