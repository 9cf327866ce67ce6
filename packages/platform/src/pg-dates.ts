/**
 * Faster parsers for `timestamptz` and `timestamptz[]` results (issue 21): the segmenter reads each
 * chunk's people with their last activity, first purchase and newest social times — thousands of
 * timestamps a chunk — and the default parser (postgres-date) runs three regular expressions per
 * value. These read the one shape Postgres prints with `DateStyle = ISO` (`2026-12-06 09:21:29.123456+00`,
 * offsets `+05:30` or `-03:00:00` too) by character position, and hand anything else (`infinity`, BC
 * dates, years outside 1000–9999, another DateStyle) to the default parser, so every value parses to
 * the same Date as before (packages/platform/test/pg-dates.test.ts compares them).
 */

const digit = (s: string, i: number) => s.charCodeAt(i) - 48;
const two = (s: string, i: number) => digit(s, i) * 10 + digit(s, i + 1);
const isDigits = (s: string, from: number, to: number) => {
  for (let i = from; i < to; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
  }
  return true;
};

/** Milliseconds since the epoch of `s` in the ISO shape, or undefined when `s` has another shape. */
export function isoTimestampMs(s: string): number | undefined {
  const n = s.length;
  if (
    n < 22 ||
    s.charCodeAt(4) !== 45 || // -
    s.charCodeAt(7) !== 45 ||
    s.charCodeAt(10) !== 32 || // space
    s.charCodeAt(13) !== 58 || // :
    s.charCodeAt(16) !== 58 ||
    !isDigits(s, 0, 4) ||
    !isDigits(s, 5, 7) ||
    !isDigits(s, 8, 10) ||
    !isDigits(s, 11, 13) ||
    !isDigits(s, 14, 16) ||
    !isDigits(s, 17, 19)
  )
    return undefined;
  const year = digit(s, 0) * 1000 + digit(s, 1) * 100 + two(s, 2);
  if (year < 1000) return undefined;
  let i = 19;
  let ms = 0;
  if (s.charCodeAt(i) === 46) {
    // the fraction, computed as postgres-date computes it (Date.UTC truncates it to whole ms)
    const from = i;
    i++;
    while (i < n && isDigits(s, i, i + 1)) i++;
    if (i === from + 1) return undefined;
    ms = 1000 * parseFloat(s.slice(from, i));
  }
  const sign = s.charCodeAt(i);
  if (sign !== 43 && sign !== 45) return undefined; // + or -
  i++;
  if (i + 2 > n || !isDigits(s, i, i + 2)) return undefined;
  let offset = two(s, i) * 3_600_000;
  i += 2;
  if (i < n) {
    if (s.charCodeAt(i) !== 58 || i + 3 > n || !isDigits(s, i + 1, i + 3)) return undefined;
    offset += two(s, i + 1) * 60_000;
    i += 3;
    if (i < n) {
      if (s.charCodeAt(i) !== 58 || i + 3 !== n || !isDigits(s, i + 1, i + 3)) return undefined;
      offset += two(s, i + 1) * 1000;
      i += 3;
    }
  }
  const utc = Date.UTC(year, two(s, 5) - 1, two(s, 8), two(s, 11), two(s, 14), two(s, 17), ms);
  return sign === 43 ? utc - offset : utc + offset;
}

/** A `timestamptz` result as a Date; `fallback` (the default parser) for any other shape. */
export function timestamptzParser(fallback: (s: string) => unknown): (s: string) => unknown {
  return (s) => {
    const ms = isoTimestampMs(s);
    return ms === undefined ? fallback(s) : new Date(ms);
  };
}

/**
 * A `timestamptz[]` result as an array of Dates, for a one-dimensional array of ISO timestamps
 * (`{"2026-12-06 09:21:29+00",NULL}`); `fallback` (the default parser) for anything else.
 */
export function timestamptzArrayParser(fallback: (s: string) => unknown): (s: string) => unknown {
  return (s) => {
    const n = s.length;
    if (n < 2 || s.charCodeAt(0) !== 123 || s.charCodeAt(n - 1) !== 125) return fallback(s); // { }
    const out: (Date | null)[] = [];
    if (n === 2) return out;
    let i = 1;
    while (i < n) {
      let end: number;
      let text: string;
      if (s.charCodeAt(i) === 34) {
        // quoted element: an ISO timestamp holds no quote or backslash
        end = s.indexOf('"', i + 1);
        if (end < 0) return fallback(s);
        text = s.slice(i + 1, end);
        end++;
      } else {
        end = s.indexOf(',', i);
        if (end < 0) end = n - 1;
        text = s.slice(i, end);
        if (text === 'NULL') {
          out.push(null);
          if (end === n - 1) return out;
          i = end + 1;
          continue;
        }
      }
      const ms = isoTimestampMs(text);
      if (ms === undefined) return fallback(s);
      out.push(new Date(ms));
      const next = s.charCodeAt(end);
      if (next === 125 && end === n - 1) return out;
      if (next !== 44) return fallback(s); // ,
      i = end + 1;
    }
    return fallback(s);
  };
}
