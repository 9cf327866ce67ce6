import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { createSandbox, type Sandbox, silentLog, waitFor } from '@pstream/testkit';
import {
  BatchConsumer,
  createKeyring,
  createMetrics,
  createPool,
  DEV_MASTER_KEYS,
  isSealed,
  loadKeyringConfig,
  type Consumed,
  type Pool,
} from '../src';

const config = loadKeyringConfig({});
const text = (v: Buffer) => v.toString('latin1');
/** `iv (12) | ciphertext | tag (16)` opened by hand, as the test's own check of the format. */
function gcmOpen(key: Buffer, box: Buffer, aad: Buffer): Buffer {
  const d = createDecipheriv('aes-256-gcm', key, box.subarray(0, 12));
  d.setAAD(aad);
  d.setAuthTag(box.subarray(box.length - 16));
  return Buffer.concat([d.update(box.subarray(12, box.length - 16)), d.final()]);
}

describe('keyring (crypto-shredding)', () => {
  let box: Sandbox;
  let pool: Pool;
  beforeAll(async () => {
    box = await createSandbox(1);
    pool = createPool(process.env.DATABASE_URL!, box.env.PG_SCHEMA!, 'test-keyring', 4);
    // the table alone (profile-store's migration 040; platform cannot import profile-store)
    await pool.query(`CREATE SCHEMA IF NOT EXISTS ${box.env.PG_SCHEMA}`);
    await pool.query(
      readFileSync(path.resolve(__dirname, '../../profile-store/migrations/040_person_keys.sql'), 'utf8'),
    );
  }, 60_000);
  afterAll(async () => {
    await pool?.end();
    await box?.cleanup();
  }, 30_000);

  it('seals under a hashed key that another process opens, and nothing of the id or the data is in clear', async () => {
    const writer = createKeyring(config, pool);
    const sealed = await writer.seal([
      { key: 'u-alice', value: '{"city":"Hangzhou"}' },
      { key: 'u-bob', value: '{"city":"Ningbo"}' },
      { key: 'u-alice', value: '{"target":"p-secret"}' },
    ]);
    expect(sealed[0]!.key).toBe(writer.subjectOf('u-alice'));
    expect(sealed[0]!.key).toBe(sealed[2]!.key);
    expect(sealed[0]!.key).not.toBe(sealed[1]!.key);
    expect(sealed[0]!.key).toMatch(/^[0-9a-f]{64}$/);
    for (const s of sealed) {
      expect(isSealed(s.value)).toBe(true);
      for (const clear of ['alice', 'bob', 'Hangzhou', 'Ningbo', 'p-secret'])
        expect(text(s.value)).not.toContain(clear);
    }
    const opened = await createKeyring(config, pool).open(sealed.map((s) => s.value));
    expect(opened.map((o) => (o.kind === 'opened' ? o.plaintext.toString() : o.kind))).toEqual([
      '{"city":"Hangzhou"}',
      '{"city":"Ningbo"}',
      '{"target":"p-secret"}',
    ]);
    // one key per person, stored wrapped: the row holds neither the id nor the key
    const { rows } = await pool.query<{ subject: Buffer; wrapped: Buffer }>('SELECT subject, wrapped FROM person_keys');
    expect(rows).toHaveLength(2);
  });

  it('after shred the person reads as shredded everywhere, their new records too, while others still open', async () => {
    const writer = createKeyring(config, pool);
    const before = await writer.seal([
      { key: 'u-carol', value: 'carol-1' },
      { key: 'u-dave', value: 'dave-1' },
    ]);
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await writer.shred(client, ['u-carol', 'a-never-seen']);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    const after = await writer.seal([
      { key: 'u-carol', value: 'carol-2' },
      { key: 'a-never-seen', value: 'x' },
    ]);
    const reader = createKeyring(config, pool);
    expect((await reader.open([...before, ...after].map((s) => s.value))).map((o) => o.kind)).toEqual([
      'shredded',
      'opened',
      'shredded',
      'shredded',
    ]);
    // a shredded id never gets a key again
    const { rows } = await pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM person_keys WHERE subject = $1 AND wrapped IS NOT NULL',
      [Buffer.from(writer.subjectOf('a-never-seen'), 'hex')],
    );
    expect(rows[0]!.n).toBe(0);
  });

  it("a message naming two people is unreadable once either is erased; the other's own messages stay readable", async () => {
    const writer = createKeyring(config, pool);
    const [both, ownUser, ownAnon] = await writer.seal([
      { key: 'u-gina', value: '{"anonymousId":"dev-shared"}', names: ['u-gina', 'dev-shared'] },
      { key: 'u-gina', value: 'gina alone' },
      { key: 'dev-shared', value: 'anon alone' },
    ]);
    expect(both!.key).toBe(writer.subjectOf('u-gina'));
    const before = await createKeyring(config, pool).open([both!.value]);
    expect(before[0]!.kind === 'opened' && before[0]!.plaintext.toString()).toBe('{"anonymousId":"dev-shared"}');
    await writer.shred(pool, ['dev-shared']);
    expect(
      (await createKeyring(config, pool).open([both!.value, ownUser!.value, ownAnon!.value])).map((o) => o.kind),
    ).toEqual(['shredded', 'opened', 'shredded']);
  });

  it('opens a value sealed by hand as the first format sealed it (HKDF of both keys), and reseals for both', async () => {
    // The person keys as Postgres holds them, unwrapped here with the master key, not by the keyring.
    const writer = createKeyring(config, pool);
    await writer.seal([{ key: 'u-jon', value: 'x', names: ['u-jon', 'dev-jon'] }]);
    const subjects = ['u-jon', 'dev-jon'].map((id) => Buffer.from(writer.subjectOf(id), 'hex'));
    const master = config.KEYRING_MASTER_KEYS.active.key;
    const keys: Buffer[] = [];
    for (const subject of subjects) {
      const { rows } = await pool.query<{ wrapped: Buffer }>('SELECT wrapped FROM person_keys WHERE subject = $1', [
        subject,
      ]);
      keys.push(gcmOpen(master, rows[0]!.wrapped, subject));
    }
    const key = Buffer.from(hkdfSync('sha256', Buffer.concat(keys), Buffer.alloc(0), 'pstream sealed message', 32));
    const header = Buffer.concat([Buffer.from([0, 1, 2]), ...subjects]);
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', key, iv);
    c.setAAD(header);
    const body = Buffer.concat([c.update('{"by":"hand"}', 'utf8'), c.final()]);
    const value = Buffer.concat([header, iv, body, c.getAuthTag()]);
    // A fresh process (keys read and derived afresh) and the writer (its derived key kept) both open it.
    for (const reader of [createKeyring(config, pool), writer]) {
      const [o] = await reader.open([value]);
      expect(o?.kind === 'opened' && o.plaintext.toString()).toBe('{"by":"hand"}');
      // Nothing of the key is enumerable on what `open` gives (a log or JSON of it shows the text only).
      expect(Object.keys(o!).sort()).toEqual(['kind', 'plaintext']);
      // Its dead letter is sealed under the same key and header: readable with the keys, and only with them.
      const again = o?.kind === 'opened' ? o.reseal('letter') : Buffer.alloc(0);
      expect(again.subarray(0, header.length).equals(header)).toBe(true);
      expect(gcmOpen(key, again.subarray(header.length), header).toString()).toBe('letter');
    }
    // And what the keyring seals now for the two is the same format, under the same key.
    const [now] = await createKeyring(config, pool).seal([{ key: 'u-jon', value: 'y', names: ['u-jon', 'dev-jon'] }]);
    expect(now!.value.subarray(0, header.length).equals(header)).toBe(true);
    expect(gcmOpen(key, now!.value.subarray(header.length), header).toString()).toBe('y');
  });

  it('a two-person message key kept across calls is not reused once either person is erased', async () => {
    const writer = createKeyring(config, pool);
    const reader = createKeyring(config, pool);
    const record = { key: 'u-hana', value: '{"anonymousId":"dev-hana"}', names: ['u-hana', 'dev-hana'] };
    // Two calls: the second takes the message key the first derived.
    const [first] = await writer.seal([record]);
    const [second] = await writer.seal([record]);
    expect((await reader.open([first!.value, second!.value])).map((o) => o.kind)).toEqual(['opened', 'opened']);
    // Erased by this very process: its later records are sealed under a throw-away key, unreadable to all.
    await writer.shred(pool, ['dev-hana']);
    const [after] = await writer.seal([record]);
    expect((await createKeyring(config, pool).open([first!.value, after!.value])).map((o) => o.kind)).toEqual([
      'shredded',
      'shredded',
    ]);
    // Erased by another process: this one's cached keys run out with KEYRING_CACHE_TTL_MS, the derived one with them.
    const short = createKeyring({ ...config, KEYRING_CACHE_TTL_MS: 1 }, pool);
    const other = { key: 'u-ida', value: '{"anonymousId":"dev-ida"}', names: ['u-ida', 'dev-ida'] };
    await short.seal([other]);
    await createKeyring(config, pool).shred(pool, ['dev-ida']);
    await new Promise((r) => setTimeout(r, 5));
    const [late] = await short.seal([other]);
    expect((await createKeyring(config, pool).open([late!.value])).map((o) => o.kind)).toEqual(['shredded']);
  });

  it('a hot person costs one key lookup, not one per record', async () => {
    const metrics = createMetrics('test');
    const keyring = createKeyring(config, pool, metrics);
    for (let i = 0; i < 20; i++) await keyring.seal([{ key: 'u-hot', value: `e-${i}` }]);
    const lookups = (await metrics.getSingleMetric('keyring_lookups_total')!.get()).values;
    expect(Object.fromEntries(lookups.map((v) => [v.labels.from, v.value]))).toEqual({ cache: 19, postgres: 1 });
  });

  it('calls made at once that miss the same new people share one load: one key each, every value opens', async () => {
    const metrics = createMetrics('test');
    const keyring = createKeyring(config, pool, metrics);
    // Five requests of one burst, overlapping people in different orders (they used to insert each other's rows).
    const people = Array.from({ length: 30 }, (_, i) => `u-burst-${i}`);
    const calls = Array.from({ length: 5 }, (_, c) =>
      keyring.seal([...people].reverse().map((p, i) => ({ key: c % 2 === 0 ? p : people[i]!, value: `e-${c}-${i}` }))),
    );
    const sealed = (await Promise.all(calls)).flat();
    const lookups = (await metrics.getSingleMetric('keyring_lookups_total')!.get()).values;
    expect(Object.fromEntries(lookups.map((v) => [v.labels.from, v.value]))).toEqual({ cache: 0, postgres: 30 });
    expect((await metrics.getSingleMetric('keyring_keys_created_total')!.get()).values[0]!.value).toBe(30);
    const { rows } = await pool.query<{ n: string }>(
      'SELECT count(*) AS n FROM person_keys WHERE subject = ANY($1::bytea[])',
      [people.map((p) => Buffer.from(keyring.subjectOf(p), 'hex'))],
    );
    expect(Number(rows[0]!.n)).toBe(30);
    const opened = await createKeyring(config, pool).open(sealed.map((s) => s.value));
    expect(opened.every((o) => o.kind === 'opened')).toBe(true);
  });

  it("a value that is not the person's reads as broken; a plaintext value as clear", async () => {
    const [s] = await createKeyring(config, pool).seal([{ key: 'u-erin', value: 'erin' }]);
    const tampered = Buffer.from(s!.value);
    tampered[tampered.length - 1]! ^= 1;
    const opened = await createKeyring(config, pool).open([tampered, Buffer.from('{"a":1}'), null]);
    expect(opened.map((o) => o.kind)).toEqual(['broken', 'clear', 'clear']);
  });

  it('rotation re-wraps every live key under the new master key; the old one can then go', async () => {
    const old = createKeyring(config, pool);
    const [s] = await old.seal([{ key: 'u-frank', value: 'frank' }]);
    const rotated = loadKeyringConfig({
      KEYRING_MASTER_KEYS: `k2:${Buffer.alloc(32, 7).toString('base64')},${DEV_MASTER_KEYS}`,
    });
    const during = createKeyring(rotated, pool);
    let total = 0;
    for (let n = await during.rewrap(pool, 2); n > 0; n = await during.rewrap(pool, 2)) total += n;
    expect(total).toBeGreaterThan(0);
    const onlyNew = createKeyring(
      loadKeyringConfig({ KEYRING_MASTER_KEYS: `k2:${Buffer.alloc(32, 7).toString('base64')}` }),
      pool,
    );
    const [o] = await onlyNew.open([s!.value]);
    expect(o?.kind === 'opened' && o.plaintext.toString()).toBe('frank');
    // a key under a master key the environment lacks is an error (retried), never a silent skip
    await expect(createKeyring(config, pool).open([s!.value])).rejects.toThrow(/master key "k2"/);
  });

  it('the batch consumer opens sealed messages, skips and counts shredded ones, and seals a dead letter again', async () => {
    const keyring = createKeyring(config, pool);
    const metrics = createMetrics('test-consumer');
    const seen: number[] = [];
    const consumer = new BatchConsumer({
      kafka: box.kafka,
      log: silentLog,
      groupId: `${box.id}-k`,
      topic: box.env.EVENTS_TOPIC!,
      dlqTopic: box.env.DLQ_TOPIC!,
      schema: z.object({ n: z.number() }),
      keyring,
      metrics,
      apply: async (messages: Consumed<{ n: number }>[]) => void seen.push(...messages.map((m) => m.value.n)),
    });
    const records = await keyring.seal([
      { key: 'u-gone', value: '{"n":1}' },
      { key: 'u-kept', value: '{"n":2}' },
      { key: 'u-kept', value: '{"n":"bad-u-kept-secret"}' },
    ]);
    await keyring.shred(pool, ['u-gone']);
    const producer = box.kafka.producer();
    await producer.connect();
    await producer.send({ topic: box.env.EVENTS_TOPIC!, messages: [...records, { value: '{"n":3}' }] });
    const dead: Buffer[] = [];
    const dlq = box.kafka.consumer({ groupId: `${box.id}-kdlq` });
    await dlq.connect();
    await dlq.subscribe({ topic: box.env.DLQ_TOPIC!, fromBeginning: true });
    await dlq.run({ eachMessage: async ({ message }) => void dead.push(message.value!) });
    await consumer.start();
    try {
      await waitFor('kept and clear messages applied, the bad one dead-lettered', async () =>
        seen.length === 2 && dead.length === 1 ? true : undefined,
      );
      expect(seen).toEqual([2, 3]);
      expect(text(dead[0]!)).not.toContain('secret');
      const [letter] = await keyring.open(dead);
      expect(letter!.kind).toBe('opened');
      const record = JSON.parse((letter as { plaintext: Buffer }).plaintext.toString());
      expect(record).toMatchObject({
        offset: '2',
        value: '{"n":"bad-u-kept-secret"}',
        reason: expect.stringMatching(/^invalid message: n: /),
      });
      const shredded = (await metrics.getSingleMetric('consumer_shredded_messages_total')!.get()).values;
      expect(shredded.map((v) => v.value)).toEqual([1]);
    } finally {
      await consumer.stop();
      await dlq.disconnect();
      await producer.disconnect();
    }
  }, 60_000);
});

describe('keyring settings', () => {
  it('name what is wrong without quoting a key', () => {
    expect(() => loadKeyringConfig({ KEYRING_MASTER_KEYS: 'k1:c2hvcnQ=' })).toThrow(
      /KEYRING_MASTER_KEYS: key "k1" is not 32 bytes/,
    );
    expect(() => loadKeyringConfig({ KEYRING_MASTER_KEYS: 'c2hvcnQ=' })).toThrow(/entry 1 is not id:base64key/);
    expect(() => loadKeyringConfig({ KEYRING_SUBJECT_KEY: 'c2hvcnQ=' })).toThrow(
      /KEYRING_SUBJECT_KEY: must be 32 bytes/,
    );
  });
});
