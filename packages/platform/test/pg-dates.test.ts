import pg from 'pg';
import { isoTimestampMs, timestamptzArrayParser, timestamptzParser } from '../src/pg-dates';

// The default parsers, as pg ships them (this file does not import postgres.ts, which replaces them).
const defaultOne = pg.types.getTypeParser(pg.types.builtins.TIMESTAMPTZ) as (s: string) => unknown;
const ARRAY = 1185 as unknown as typeof pg.types.builtins.TIMESTAMPTZ;
const defaultArray = pg.types.getTypeParser(ARRAY) as (s: string) => unknown;
const fail = (s: string): unknown => {
  throw new Error(`fallback for ${s}`);
};
const time = (v: unknown) => (v instanceof Date ? v.getTime() : v);

describe('timestamptz parsers by character position', () => {
  const iso = [
    '2026-12-06 09:21:29+00',
    '2026-12-06 09:21:29.1+00',
    '2026-12-06 09:21:29.123+00',
    '2026-12-06 09:21:29.123456+00',
    '2026-12-06 09:21:29.999999+00',
    '2026-01-01 00:00:00.0005+00',
    '2024-02-29 23:59:59.5+05:30',
    '1999-12-31 23:59:59.25-03',
    '2026-06-30 12:00:00-03:00:15',
    '1000-01-01 00:00:00+00',
    '9999-12-31 23:59:59.999+14',
  ];

  it('reads the ISO shape as the default parser does, without it', () => {
    const fast = timestamptzParser(fail);
    for (const s of iso) {
      expect(isoTimestampMs(s)).toBe((defaultOne(s) as Date).getTime());
      expect(time(fast(s))).toBe((defaultOne(s) as Date).getTime());
    }
  });

  it('reads every fraction of a second as the default parser does', () => {
    for (let f = 0; f < 1_000_000; f += 97) {
      for (const digits of [String(f).padStart(6, '0'), String(f % 1000).padStart(3, '0')]) {
        const s = `2026-12-06 09:21:29.${digits}+00`;
        expect(isoTimestampMs(s)).toBe((defaultOne(s) as Date).getTime());
      }
    }
  });

  it('hands every other shape to the default parser', () => {
    const fast = timestamptzParser(defaultOne);
    for (const s of [
      'infinity',
      '-infinity',
      '0044-03-15 12:00:00+00 BC',
      '0099-01-01 00:00:00+00',
      '12026-01-01 00:00:00+00',
      '2026-12-06T09:21:29Z',
      '2026-12-06 09:21:29',
      '2026-12-06 09:21:29+0',
      '2026-12-06 09:21:29.+00',
    ]) {
      expect(isoTimestampMs(s)).toBeUndefined();
      expect(time(fast(s))).toEqual(time(defaultOne(s)));
    }
  });

  it('reads arrays as the default parser does', () => {
    const fast = timestamptzArrayParser(defaultArray);
    const strict = timestamptzArrayParser(fail);
    const arrays = [
      '{}',
      `{"${iso[0]}"}`,
      `{${iso.map((s) => `"${s}"`).join(',')}}`,
      `{"${iso[2]}",NULL,"${iso[3]}"}`,
      `{NULL}`,
    ];
    for (const s of arrays) {
      const want = (defaultArray(s) as (Date | null)[]).map(time);
      expect((strict(s) as (Date | null)[]).map(time)).toEqual(want);
      expect((fast(s) as (Date | null)[]).map(time)).toEqual(want);
    }
    for (const s of ['{infinity}', '{"2026-12-06 09:21:29+00",infinity}', '{{"2026-12-06 09:21:29+00"}}']) {
      expect((fast(s) as unknown[]).flat().map(time)).toEqual((defaultArray(s) as unknown[]).flat().map(time));
    }
  });
});
