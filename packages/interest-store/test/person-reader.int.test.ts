import { Redis } from 'ioredis';
import { testId } from '@pstream/testkit';
import { createPersonReader } from '../src';

describe('createPersonReader against real Redis', () => {
  // auto-pipelined, as createRedis makes the services' clients: the reader's plain command must not mix replies up
  const redis = new Redis(process.env.REDIS_URL!, { enableAutoPipelining: true });
  const prefix = `test:${testId()}`;
  const key = (person: number, part: 'alias' | 'state') => `${prefix}:{p${person}}:${part}`;
  // 150 people (more than one MGET's 64): every third has an alias, every fifth no state
  const PEOPLE = 150;

  beforeAll(async () => {
    const m = redis.multi();
    for (let p = 0; p < PEOPLE; p++) {
      if (p % 3 === 0) m.set(key(p, 'alias'), `other-${p}`);
      if (p % 5 !== 0) m.set(key(p, 'state'), Buffer.from([p, 0, 255, p % 7]));
    }
    await m.exec();
  });

  afterAll(async () => {
    const stream = redis.scanStream({ match: `${prefix}:*`, count: 500 });
    for await (const batch of stream as AsyncIterable<string[]>) if (batch.length > 0) await redis.del(...batch);
    redis.disconnect();
  });

  const expected = async (p: number) => [
    await redis.getBuffer(key(p, 'alias')),
    await redis.getBuffer(key(p, 'state')),
  ];

  it('answers a lone read as its MGET would', async () => {
    const read = createPersonReader(redis);
    for (const p of [0, 1, 5, 7])
      expect(await read(key(p, 'alias'), key(p, 'state'))).toEqual(
        await redis.mgetBuffer(key(p, 'alias'), key(p, 'state')),
      );
  });

  it('answers each of many reads of one turn (several MGETs) with its own person’s values, beside other commands', async () => {
    const read = createPersonReader(redis);
    const people = Array.from({ length: PEOPLE }, (_, p) => p);
    const [got, pinged] = await Promise.all([
      Promise.all(people.map((p) => read(key(p, 'alias'), key(p, 'state')))),
      redis.ping(),
    ]);
    expect(pinged).toBe('PONG');
    for (const p of people) expect(got[p]).toEqual(await expected(p));
    // and reads of the next turn again
    expect(await read(key(3, 'alias'), key(3, 'state'))).toEqual(await expected(3));
  });

  it('rejects every read of a batch whose MGET fails', async () => {
    // not connected and queueing nothing: its commands fail at once
    const closed = new Redis(process.env.REDIS_URL!, { lazyConnect: true, enableOfflineQueue: false });
    closed.on('error', () => undefined);
    const read = createPersonReader(closed);
    const reads = [read('a', 'b'), read('c', 'd')];
    await expect(reads[0]).rejects.toThrow();
    await expect(reads[1]).rejects.toThrow();
    closed.disconnect();
  });
});
