import { z } from 'zod';
import { commonEnv, envBoolean, envInt, envList, envPairs, parseEnv } from '../src';

describe('parseEnv', () => {
  const schema = z.object({ FLAG: envBoolean(false), N: envInt(5, 1), LIST: envList('a,b') });

  it('reads booleans only from true/1 and false/0', () => {
    expect(parseEnv(schema, { FLAG: 'true' }).FLAG).toBe(true);
    expect(parseEnv(schema, { FLAG: '1' }).FLAG).toBe(true);
    expect(parseEnv(schema, { FLAG: 'false' }).FLAG).toBe(false);
    expect(parseEnv(schema, {}).FLAG).toBe(false);
    expect(() => parseEnv(schema, { FLAG: 'yes' })).toThrow(/FLAG/);
  });

  it('applies defaults and splits lists', () => {
    expect(parseEnv(schema, {})).toEqual({ FLAG: false, N: 5, LIST: ['a', 'b'] });
    expect(parseEnv(schema, { LIST: ' x , ,y ' }).LIST).toEqual(['x', 'y']);
  });

  it('names every bad variable in one error', () => {
    expect(() => parseEnv(schema, { FLAG: 'maybe', N: '0' })).toThrow(/FLAG: .*; N: /);
  });

  it('refuses a Postgres schema name that could inject SQL', () => {
    const s = z.object({ PG_SCHEMA: commonEnv.PG_SCHEMA });
    expect(() => parseEnv(s, { PG_SCHEMA: 'x; DROP TABLE people' })).toThrow(/PG_SCHEMA/);
  });
});

describe('envPairs', () => {
  const schema = z.object({
    RATES: envPairs({
      format: 'CODE=rate',
      key: z.string().regex(/^[A-Z]{3}$/, 'must be 3 capitals'),
      value: z.coerce.number().positive('must be positive'),
      fallback: '',
    }),
    KEYS: envPairs({
      format: 'key=source',
      key: z.string().min(1, 'is empty'),
      value: z.string().min(1, 'is empty'),
      fallback: 'k=web',
      nonEmpty: true,
      secretKeys: true,
    }),
  });

  it('reads pairs into a map, trimming blanks and splitting at the first "="', () => {
    const env = parseEnv(schema, { RATES: ' USD=7.1 , ,EUR=7.8', KEYS: 'abc=web,x=a=b' });
    expect([...env.RATES]).toEqual([
      ['USD', 7.1],
      ['EUR', 7.8],
    ]);
    expect([...env.KEYS]).toEqual([
      ['abc', 'web'],
      ['x', 'a=b'],
    ]);
    expect(parseEnv(schema, {}).RATES.size).toBe(0);
  });

  it('names the variable and quotes the bad pair and why', () => {
    expect(() => parseEnv(schema, { RATES: 'USD=7.1,usd=7' })).toThrow(
      'RATES: pair 2 "usd=7" is not CODE=rate: key must be 3 capitals',
    );
    expect(() => parseEnv(schema, { RATES: 'USD=-1' })).toThrow(
      'RATES: pair 1 "USD=-1" is not CODE=rate: value must be positive',
    );
    expect(() => parseEnv(schema, { RATES: 'USD' })).toThrow('RATES: pair 1 "USD" is not CODE=rate: no "="');
    expect(() => parseEnv(schema, { RATES: 'USD=1,USD=2' })).toThrow(
      'RATES: pair 2 "USD=2" is not CODE=rate: the key appears twice',
    );
  });

  it('shows only the start of a secret key and requires a pair when asked', () => {
    expect(() => parseEnv(schema, { KEYS: 'supersecretkey=' })).toThrow(
      'KEYS: pair 1 "supe…=" is not key=source: value is empty',
    );
    expect(() => parseEnv(schema, { KEYS: ' , ' })).toThrow('KEYS: at least one key=source pair is required');
  });
});
