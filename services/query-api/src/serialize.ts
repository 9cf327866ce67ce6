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
  return compileSuccessSerializer(route, []);
}

/**
 * `compiledSuccessSerializer`, with the named top-level properties of a 2xx answer written by
 * `JSON.stringify` (their schema compiled as `{}`, which fast-json-stringify writes that way) rather
 * than the code compiled for their schema. For a value the handler builds with exactly its schema's
 * keys in the schema's order and finite numbers, the bytes are the same (strings are escaped alike,
 * numbers printed alike); the native call builds the text without the compiled code's per-field
 * string concatenations: for the profile's 20 interests ~5 KB fewer allocated and less CPU per
 * answer (BENCHMARKS.md "Reads", issue 21).
 */
export function successSerializerWithNative(native: readonly string[]) {
  return (route: { schema: unknown; method: string; url: string; httpStatus?: string }): ((data: unknown) => string) =>
    compileSuccessSerializer(route, native);
}

function compileSuccessSerializer(
  route: { schema: unknown; method: string; url: string; httpStatus?: string },
  native: readonly string[],
): (data: unknown) => string {
  const schema = route.schema as z.ZodType;
  if (!/^2\d\d$/.test(String(route.httpStatus))) return zodSerializerCompiler({ ...route, schema });
  const json = z.toJSONSchema(schema, { target: 'draft-7', io: 'output', unrepresentable: 'any' }) as {
    properties?: Record<string, unknown>;
  };
  for (const name of native) {
    if (!json.properties?.[name]) throw new Error(`no property ${name} in the response schema of ${route.url}`);
    json.properties[name] = {};
  }
  const stringify = fastJson(json as Parameters<typeof fastJson>[0]);
  return (data) => stringify(data);
}
