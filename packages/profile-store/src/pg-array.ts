/**
 * A Postgres array literal of `values`, for a `$n::type[]` parameter: what node-postgres writes for a
 * JS array (each element quoted, `"` and `\` escaped, NULL for null or undefined), in one pass. Its
 * own serialiser runs two regular-expression replacements and a type dispatch per element; the apply
 * path sends about forty arrays of up to 500 elements a chunk. A Date goes as its ISO instant.
 *
 * The literal is made by `join`, which allocates it once, never by `+=` per element: that builds a
 * rope of cons strings (three or four objects an element, a third of all the apply path allocated)
 * that lives, and is copied by each young-generation collection, until node-postgres flattens it.
 * Nearly every array is all plain strings or all numbers or booleans, joined as they are.
 */
export function pgArray(values: readonly (string | number | boolean | Date | null | undefined)[]): string {
  const n = values.length;
  if (n === 0) return '{}';
  const kind = typeof values[0];
  let i = 0;
  if (kind === 'string') {
    while (i < n && typeof values[i] === 'string' && !QUOTE_OR_BACKSLASH.test(values[i] as string)) i++;
    if (i === n) return `{"${values.join('","')}"}`;
  } else if (kind === 'number' || kind === 'boolean') {
    while (i < n && typeof values[i] === kind) i++;
    // join writes a number or boolean as String(v) does
    if (i === n) return `{${values.join(',')}}`;
  }
  const parts = new Array<string>(n);
  for (i = 0; i < n; i++) {
    const v = values[i];
    if (v === null || v === undefined) parts[i] = 'NULL';
    else if (typeof v === 'string')
      parts[i] = QUOTE_OR_BACKSLASH.test(v) ? `"${v.replace(ESCAPED, '\\$&')}"` : `"${v}"`;
    else if (v instanceof Date) parts[i] = `"${v.toISOString()}"`;
    else parts[i] = String(v);
  }
  return `{${parts.join(',')}}`;
}

const QUOTE_OR_BACKSLASH = /["\\]/;
const ESCAPED = /["\\]/g;
