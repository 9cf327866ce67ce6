import pg from 'pg';
import { isoOfTimestamptz, isoTimestampTypes } from '../src';

describe('timestamptz as ISO text', () => {
  const driver = pg.types.getTypeParser(1184, 'text') as (text: string) => Date;

  it('gives what the driver’s Date prints, for every fraction of a second Postgres writes', () => {
    const fractions = [''];
    for (let k = 0; k < 10; k++) fractions.push(`.${k}`);
    for (let k = 0; k < 100; k++) fractions.push(`.${String(k).padStart(2, '0')}`);
    for (let k = 0; k < 1000; k++) fractions.push(`.${String(k).padStart(3, '0')}`);
    for (const day of ['2026-12-06 09:05:33', '1970-01-01 00:00:00', '1000-01-01 23:59:59', '9999-12-31 23:59:59'])
      for (const f of fractions) {
        const text = `${day}${f}+00`;
        expect([text, isoOfTimestamptz(text)]).toEqual([text, driver(text).toISOString()]);
      }
  });

  it('leaves anything else to the driver’s parser (microseconds, other offsets, early years)', () => {
    for (const text of [
      '2026-12-06 09:05:33.123456+00',
      '2026-12-06 09:05:33+02',
      '2026-12-06 09:05:33.5+05:30',
      '0050-01-01 00:00:00+00',
    ])
      expect(isoOfTimestamptz(text)).toBe(driver(text).toISOString());
  });

  it('changes only timestamptz', () => {
    expect(isoTimestampTypes.getTypeParser(1184, 'text')).toBe(isoOfTimestamptz);
    expect(isoTimestampTypes.getTypeParser(23, 'text')).toBe(pg.types.getTypeParser(23, 'text'));
  });
});
