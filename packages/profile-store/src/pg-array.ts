/**
 * A Postgres array literal of `values`, for a `$n::type[]` parameter: what node-postgres writes for a
 * JS array (each element quoted, `"` and `\` escaped, NULL for null or undefined), in one pass. Its
 * own serialiser runs two regular-expression replacements and a type dispatch per element; the apply
 * path sends about forty arrays of up to 500 elements a chunk. A Date goes as its ISO instant.
 */
export function pgArray(values: readonly (string | number | boolean | Date | null | undefined)[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (i > 0) out += ',';
    if (v === null || v === undefined) out += 'NULL';
    else if (typeof v === 'string') out += QUOTE_OR_BACKSLASH.test(v) ? `"${v.replace(ESCAPED, '\\$&')}"` : `"${v}"`;
    else if (v instanceof Date) out += `"${v.toISOString()}"`;
    else out += String(v);
  }
  return out + '}';
}

const QUOTE_OR_BACKSLASH = /["\\]/;
const ESCAPED = /["\\]/g;
