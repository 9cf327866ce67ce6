/**
 * What every store can hold (docs/operations.md §6). Postgres refuses U+0000 in text and jsonb and any lone
 * UTF-16 surrogate (it cannot be encoded as UTF-8); Redis and Kafka would take them, so without
 * this one store would apply a message the other dead-letters. Ingest refuses such input with a
 * 400 naming the path, and both consumers apply the same check at their boundary, so a message
 * either passes everywhere or goes to the DLQ from every group.
 *
 * We refuse all C0 control characters (U+0000-U+001F) and DEL, not only NUL: no id, tag, trait
 * or context string has a use for them, they break logs and CSV exports, and the Redis model
 * uses \n and \t as separators inside packed records.
 */

/** Nesting deeper than this (objects and arrays) is refused: no field of ours needs more. */
export const MAX_JSON_DEPTH = 32;

// With the u flag a valid surrogate pair is one astral code point, so the surrogate range only
// matches lone surrogates.
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const UNSTORABLE_RE = /[\u0000-\u001f\u007f\ud800-\udfff]/u;

/** Why a string cannot be stored, or undefined when it can. */
export function unstorableString(s: string): string | undefined {
  const m = UNSTORABLE_RE.exec(s);
  if (m === null) return undefined;
  const code = m[0].charCodeAt(0);
  const hex = `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
  if (code >= 0xd800 && code <= 0xdfff) return `contains a lone UTF-16 surrogate (${hex}) at character ${m.index}`;
  return `contains the control character ${hex} at character ${m.index}`;
}

export type Unstorable = { path: string; message: string };

/**
 * The first place in a JSON value that no store can hold: a string (or object key) with a
 * control character or a lone surrogate, or nesting deeper than `maxDepth`. Iterative, so a
 * hostile depth cannot overflow the stack.
 */
export function findUnstorable(value: unknown, maxDepth = MAX_JSON_DEPTH): Unstorable | undefined {
  const stack: { v: unknown; path: (string | number)[] }[] = [{ v: value, path: [] }];
  const at = (path: (string | number)[]) => path.join('.');
  while (stack.length > 0) {
    const { v, path } = stack.pop()!;
    if (typeof v === 'string') {
      const why = unstorableString(v);
      if (why !== undefined) return { path: at(path), message: why };
      continue;
    }
    if (typeof v !== 'object' || v === null) continue;
    if (path.length >= maxDepth) return { path: at(path), message: `is nested deeper than ${maxDepth} levels` };
    // Pushed in reverse so the first problem in document order is found first.
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i], path: [...path, i] });
      continue;
    }
    const entries = Object.entries(v as Record<string, unknown>);
    for (const [k] of entries) {
      const why = unstorableString(k);
      if (why !== undefined) return { path: at([...path, k]), message: `the key ${why}` };
    }
    for (let i = entries.length - 1; i >= 0; i--) stack.push({ v: entries[i]![1], path: [...path, entries[i]![0]] });
  }
  return undefined;
}
