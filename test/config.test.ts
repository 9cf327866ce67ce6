/**
 * Each service validates only the settings it reads: a bad value for another service's setting
 * never stops it, a bad value for its own does, naming the variable.
 */
import { loadConfig as ingest } from '@pstream/ingest/config';
import { loadConfig as queryApi } from '@pstream/query-api/config';
import { loadConfig as scorer } from '@pstream/scorer/config';
import { loadConfig as segmenter } from '@pstream/segmenter/config';

/** A bad value for every shared setting. */
const BAD: Record<string, string> = {
  KAFKA_BROKERS: ' , ',
  EVENTS_TOPIC: '',
  DLQ_TOPIC: '',
  LIFECYCLE_TOPIC: '',
  AUDIENCES_TOPIC: '',
  REDIS_URL: 'not a url',
  REDIS_PREFIX: 'has spaces',
  DATABASE_URL: 'not a url',
  PG_SCHEMA: 'Bad-Schema',
  BASE_CURRENCY: 'yen',
  LOG_LEVEL: 'loud',
  DECAY_HALF_LIFE_DAYS: '-1',
  DECAY_LANDMARK: 'yesterday',
  INTEREST_VALUE_SCALE: '0',
  DEDUPE_WINDOW_HOURS: '12',
  MAX_MERGED_IDS: '0',
};
const required = { WRITE_KEYS: 'k=web', API_TOKENS: 't=*' };

const services: [string, (env: NodeJS.ProcessEnv) => unknown, string[]][] = [
  [
    'ingest',
    ingest,
    ['KAFKA_BROKERS', 'EVENTS_TOPIC', 'LOG_LEVEL', 'REDIS_URL', 'REDIS_PREFIX', 'DATABASE_URL', 'PG_SCHEMA'],
  ],
  [
    'query-api',
    queryApi,
    [
      'REDIS_URL',
      'REDIS_PREFIX',
      'DATABASE_URL',
      'PG_SCHEMA',
      'BASE_CURRENCY',
      'LOG_LEVEL',
      'DECAY_HALF_LIFE_DAYS',
      'DECAY_LANDMARK',
      'INTEREST_VALUE_SCALE',
      'KAFKA_BROKERS',
      'DLQ_TOPIC',
    ],
  ],
  [
    'scorer',
    scorer,
    [
      'KAFKA_BROKERS',
      'EVENTS_TOPIC',
      'DLQ_TOPIC',
      'REDIS_URL',
      'REDIS_PREFIX',
      'DATABASE_URL',
      'PG_SCHEMA',
      'LOG_LEVEL',
      'DECAY_HALF_LIFE_DAYS',
      'DECAY_LANDMARK',
      'DEDUPE_WINDOW_HOURS',
      'MAX_MERGED_IDS',
    ],
  ],
  [
    'segmenter',
    segmenter,
    [
      'KAFKA_BROKERS',
      'EVENTS_TOPIC',
      'DLQ_TOPIC',
      'LIFECYCLE_TOPIC',
      'DATABASE_URL',
      'PG_SCHEMA',
      'BASE_CURRENCY',
      'LOG_LEVEL',
      'DEDUPE_WINDOW_HOURS',
      'MAX_MERGED_IDS',
      'AUDIENCES_TOPIC',
      'REDIS_URL',
      'REDIS_PREFIX',
      'DECAY_HALF_LIFE_DAYS',
      'DECAY_LANDMARK',
      'INTEREST_VALUE_SCALE',
    ],
  ],
];

describe.each(services)('%s configuration', (_name, load, uses) => {
  it('starts whatever the settings it does not read say', () => {
    const others = Object.fromEntries(Object.entries(BAD).filter(([name]) => !uses.includes(name)));
    expect(() => load({ ...required, ...others })).not.toThrow();
  });

  it.each(uses)('refuses a bad %s, naming it', (name) => {
    expect(() => load({ ...required, [name]: BAD[name] })).toThrow(new RegExp(`\\b${name}\\b`));
  });
});
