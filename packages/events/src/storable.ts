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
 * control character or a lone surrogate, or nesting deeper than `maxDepth`. Keys of an object are
 * checked before its values, values in document order. The walk recurses, but never deeper than
 * `maxDepth` (a hostile depth is refused there, not followed); the path is built only for the
 * problem found — this runs on every event ingest accepts and every message a consumer reads.
 */
export function findUnstorable(value: unknown, maxDepth = MAX_JSON_DEPTH): Unstorable | undefined {
  const found = walk(value, 0, maxDepth);
  return found === undefined ? undefined : { path: found.path.reverse().join('.'), message: found.message };
}

/** `findUnstorable` below `depth`; the path comes back leaf first. */
function walk(v: unknown, depth: number, maxDepth: number): { path: (string | number)[]; message: string } | undefined {
  if (typeof v === 'string') {
    const why = unstorableString(v);
    return why === undefined ? undefined : { path: [], message: why };
  }
  if (typeof v !== 'object' || v === null) return undefined;
  if (depth >= maxDepth) return { path: [], message: `is nested deeper than ${maxDepth} levels` };
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const bad = walk(v[i], depth + 1, maxDepth);
      if (bad !== undefined) return (bad.path.push(i), bad);
    }
    return undefined;
  }
  const keys = Object.keys(v);
  for (const k of keys) {
    const why = unstorableString(k);
    if (why !== undefined) return { path: [k], message: `the key ${why}` };
  }
  for (const k of keys) {
    const bad = walk((v as Record<string, unknown>)[k], depth + 1, maxDepth);
    if (bad !== undefined) return (bad.path.push(k), bad);
  }
  return undefined;
}
