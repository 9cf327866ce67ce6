import { z } from 'zod';
import { commonEnv, envBoolean, envInt, envList, parseEnv } from '../src';

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
