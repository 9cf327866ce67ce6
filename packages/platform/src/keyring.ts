import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import { z } from 'zod';
import { envInt, parseEnv } from './config';
import { BoundedMap } from './bounded-map';
import { AppError } from './errors';
import { counter, type Registry } from './metrics';

/**
 * Crypto-shredding (docs/privacy.md): everything that describes a person on our topics is
 * encrypted with a data key of that person's, so destroying the key erases every copy, Kafka's
 * log segments and their backups included, while everyone else's events stay readable.
 *
 * - The person is named by a **subject**: HMAC-SHA256 of the profile key under
 *   KEYRING_SUBJECT_KEY. It is the Kafka message key (hex), so partitioning and per-person order
 *   are those of the profile key, and the broker never sees an id.
 * - A sealed value is `00 01 | n | n subjects (32 each) | iv (12) | AES-256-GCM ciphertext | tag (16)`;
 *   the header is the AEAD's associated data, so a value cannot be passed off as another
 *   person's. The first subject is the record's own (its profile key); the others are every
 *   other id the message names (an anonymousId beside a userId, a previousId), and the message
 *   key is derived (HKDF) from all their keys: erasing any person the message names makes it
 *   unreadable. JSON never starts with a zero byte, so a plaintext message (an old topic, a test
 *   producer) is told apart from a sealed one by its first byte.
 * - Data keys (32 random bytes) live in Postgres (`person_keys`, migration 040), wrapped with
 *   AES-256-GCM under a master key from KEYRING_MASTER_KEYS that never leaves the environment.
 *   Erasure replaces the row by a tombstone (`shred`): the key is gone, and ingest seals the
 *   erased ids' later events under throw-away keys that are never stored.
 * - Keys are cached per process for KEYRING_CACHE_TTL_MS, so a hot person costs one lookup per
 *   TTL, not one per event; the misses of the calls made in one turn of the event loop are one query, and a
 *   key already being read or made is waited for, not read again.
 *
 * This module is the one place that knows the format, the table and the keys: ingest calls
 * `seal` where it produces, the batch consumer calls `open` where it reads, the segmenter's
 * outboxes call `seal`, and the erasure calls `shred` in its transaction.
 */

const MARK = 0x00;
const FORMAT = 0x01;
const SUBJECT_BYTES = 32;
/** A message names at most its profile key, userId, anonymousId and previousId. */
const MAX_SUBJECTS = 4;
const headerBytes = (n: number) => 3 + n * SUBJECT_BYTES;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

export const KeyringErrors = {
  /** A stored key was wrapped by a master key KEYRING_MASTER_KEYS no longer holds. */
  MASTER_KEY_MISSING: 'PLT_KEYRING_MASTER_KEY_MISSING',
  /** A stored key does not unwrap with its master key: a wrong key under that id, or a damaged row. */
  KEY_UNWRAP_FAILED: 'PLT_KEYRING_KEY_UNWRAP_FAILED',
} as const;

/** 32 bytes in base64, for a key from the environment. */
const key32 = z
  .string()
  .transform((v) => Buffer.from(v.trim(), 'base64'))
  .refine((b) => b.length === KEY_BYTES, `must be ${KEY_BYTES} bytes in base64 (openssl rand -base64 32)`);

export type MasterKeys = { active: { id: string; key: Buffer }; byId: Map<string, Buffer> };

/**
 * `id:base64key,id2:base64key2`: the first wraps new data keys, every one unwraps. Rotation
 * (docs/privacy.md): put a new key first, run `pnpm keyring:rewrap`, then drop the old one.
 */
const masterKeys = z.string().transform((text, ctx): MasterKeys => {
  const byId = new Map<string, Buffer>();
  let active: MasterKeys['active'] | undefined;
  for (const [i, entry] of text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .entries()) {
    const colon = entry.indexOf(':');
    const id = colon < 0 ? '' : entry.slice(0, colon);
    // The key itself is never quoted in an error.
    if (!/^[a-z0-9][a-z0-9._-]{0,31}$/.test(id)) {
      ctx.addIssue({
        code: 'custom',
        message: `entry ${i + 1} is not id:base64key with an id of [a-z0-9._-], at most 32 characters`,
      });
      return z.NEVER;
    }
    const key = Buffer.from(entry.slice(colon + 1), 'base64');
    if (key.length !== KEY_BYTES) {
      ctx.addIssue({
        code: 'custom',
        message: `key "${id}" is not ${KEY_BYTES} bytes in base64 (openssl rand -base64 32)`,
      });
      return z.NEVER;
    }
    if (byId.has(id)) {
      ctx.addIssue({ code: 'custom', message: `key id "${id}" appears twice` });
      return z.NEVER;
    }
    byId.set(id, key);
    active ??= { id, key };
  }
  if (!active) {
    ctx.addIssue({ code: 'custom', message: 'at least one id:base64key is required' });
    return z.NEVER;
  }
  return { active, byId };
});

/**
 * Development keys: the demo, the tests and a fresh checkout run with them. They are public (in
 * this file), so a deployment must set its own; with NODE_ENV=production they are refused.
 */
export const DEV_MASTER_KEYS = 'dev:IVao2od/HQOuZ/IsNIo9d3y5YWpLjvpJM/K48Z2Pxx8=';
export const DEV_SUBJECT_KEY = 'yfFTWLLDoUeG7xbV8wxYby1TwfsYj/qJlQpbtpqLpmM=';
const notDevInProduction = (dev: string) => (v: string) => process.env.NODE_ENV !== 'production' || v.trim() !== dev;

/** The keyring's settings; every service that seals, opens or shreds spreads these into its schema. */
export const keyringEnv = {
  /** Master keys `id:base64(32 bytes)`, comma-separated; the first wraps new data keys. */
  KEYRING_MASTER_KEYS: z
    .string()
    .default(DEV_MASTER_KEYS)
    .refine(notDevInProduction(DEV_MASTER_KEYS), 'is the public development key; set your own with NODE_ENV=production')
    .pipe(masterKeys),
  /**
   * base64(32 bytes): the HMAC key turning a profile key into its subject (Kafka's message key). Never rotated: it
   * places people on partitions.
   */
  KEYRING_SUBJECT_KEY: z
    .string()
    .default(DEV_SUBJECT_KEY)
    .refine(notDevInProduction(DEV_SUBJECT_KEY), 'is the public development key; set your own with NODE_ENV=production')
    .pipe(key32),
  /** How long a process keeps a person's unwrapped key (or its absence) in memory. */
  KEYRING_CACHE_TTL_MS: envInt(60_000, 0),
  /** How many people's keys a process keeps in memory at most. */
  KEYRING_CACHE_SIZE: envInt(100_000, 1),
} as const;

export type KeyringConfig = {
  KEYRING_MASTER_KEYS: MasterKeys;
  KEYRING_SUBJECT_KEY: Buffer;
  KEYRING_CACHE_TTL_MS: number;
  KEYRING_CACHE_SIZE: number;
};

/** The keyring's settings alone, for a command or a test that needs nothing else. */
export function loadKeyringConfig(env: NodeJS.ProcessEnv = process.env): KeyringConfig {
  return parseEnv(z.object(keyringEnv), env);
}

/** What reading one Kafka value gave. */
export type Opened =
  /** Not sealed (a topic written before sealing, or a test producer): the value as it is. */
  | { kind: 'clear' }
  /** Sealed and opened; `reseal` seals another text for the same person (their dead letter). */
  | { kind: 'opened'; plaintext: Buffer; reseal(text: string): Buffer } // a method: call it on the value, not detached
  /** Sealed for a person whose key was destroyed by an erasure: unreadable for good. */
  | { kind: 'shredded' }
  /** Sealed, but it does not open with its person's key (damaged or forged). */
  | { kind: 'broken'; reason: string };

type Db = Pick<Pool, 'query'> | Pick<PoolClient, 'query'>;

export type Keyring = ReturnType<typeof createKeyring>;

/** True when `value` is in the sealed format (by its first two bytes). */
export function isSealed(value: Buffer | null | undefined): value is Buffer {
  if (value == null || value.length < 3 || value[0] !== MARK || value[1] !== FORMAT) return false;
  const n = value[2]!;
  return n >= 1 && n <= MAX_SUBJECTS && value.length >= headerBytes(n) + IV_BYTES + TAG_BYTES;
}

/** HKDF's salt when none is given (RFC 5869 2.2: HashLen zeros), and the info and counter of its one output block. */
const HKDF_NO_SALT = Buffer.alloc(32);
const HKDF_INFO_BLOCK_1 = Buffer.concat([Buffer.from('pstream sealed message', 'utf8'), Buffer.from([1])]);

/**
 * The key of a message naming several people: HKDF-SHA256 of their keys (concatenated, in the header's order), no
 * salt, info "pstream sealed message", 32 bytes. Written out as RFC 5869's two HMACs (extract, then the one expand
 * block 32 bytes need): the very bytes of `hkdfSync('sha256', concat(keys), '', info, 32)`
 * (test/keyring-derive.test.ts), at about a third of its cost (it builds KeyObjects and a job per call).
 */
export function deriveMessageKey(keys: readonly Buffer[]): Buffer {
  const extract = createHmac('sha256', HKDF_NO_SALT);
  for (const k of keys) extract.update(k);
  return createHmac('sha256', extract.digest()).update(HKDF_INFO_BLOCK_1).digest();
}

/** The key of one message: its person's key, or one derived from the keys of every person it names. */
function messageKey(keys: Buffer[]): Buffer {
  return keys.length === 1 ? keys[0]! : deriveMessageKey(keys);
}

function encrypt(key: Buffer, plaintext: Buffer, aad: Buffer, iv: Buffer = randomBytes(IV_BYTES)): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad);
  const body = cipher.update(plaintext);
  cipher.final();
  return Buffer.concat([iv, body, cipher.getAuthTag()]);
}

/**
 * `header | iv | ciphertext | tag` in one buffer: the text is encrypted straight from its UTF-8
 * (no Buffer of the plaintext first) and the parts are copied once (ingest's hot path: one per event).
 */
function sealText(key: Buffer, header: Buffer, text: string | Buffer, iv: Buffer): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(header);
  const body = typeof text === 'string' ? cipher.update(text, 'utf8') : cipher.update(text);
  cipher.final();
  const tag = cipher.getAuthTag();
  const out = Buffer.allocUnsafe(header.length + IV_BYTES + body.length + TAG_BYTES);
  header.copy(out, 0);
  iv.copy(out, header.length);
  body.copy(out, header.length + IV_BYTES);
  tag.copy(out, header.length + IV_BYTES + body.length);
  return out;
}

/** Throws when the box was not made with this key and aad. */
function decrypt(key: Buffer, box: Buffer, aad: Buffer): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, box.subarray(0, IV_BYTES));
  decipher.setAAD(aad);
  decipher.setAuthTag(box.subarray(box.length - TAG_BYTES));
  const text = decipher.update(box.subarray(IV_BYTES, box.length - TAG_BYTES));
  // GCM's final() only checks the tag (it throws when the box was not made with this key and aad); it returns no bytes.
  const rest = decipher.final();
  return rest.length === 0 ? text : Buffer.concat([text, rest]);
}

function sealWith(key: Buffer, header: Buffer, plaintext: Buffer, iv?: Buffer): Buffer {
  return Buffer.concat([header, encrypt(key, plaintext, header, iv)]);
}

/**
 * Message keys of one call (those naming an erased person: never kept), by the subjects they are made of: derived once
 * per group of people, not per message.
 */
function messageKeys(): (hexes: string[], keys: () => Buffer[]) => Buffer {
  const memo = new Map<string, Buffer>();
  return (hexes, keys) => {
    if (hexes.length === 1) return keys()[0]!;
    const id = hexes.join('');
    let key = memo.get(id);
    if (!key) memo.set(id, (key = messageKey(keys())));
    return key;
  };
}

type Row = { subject: Buffer; wrapped: Buffer | null; master_id: string | null };

/**
 * A sealed value opened: `reseal` seals another text for the same people under the same key (its dead letter). The
 * key and header are #private: never enumerable, so a log or JSON of the object cannot show the key.
 */
class OpenedValue {
  readonly kind = 'opened' as const;
  readonly #key: Buffer;
  readonly #header: Buffer;

  constructor(
    readonly plaintext: Buffer,
    key: Buffer,
    header: Buffer,
  ) {
    this.#key = key;
    this.#header = header;
  }

  reseal(text: string): Buffer {
    return sealWith(this.#key, this.#header, Buffer.from(text, 'utf8'));
  }
}
/** The results that carry nothing of their value: one object each for every call. */
const CLEAR: Opened = { kind: 'clear' };
const SHREDDED: Opened = { kind: 'shredded' };

/**
 * The keyring of one process: `db` reaches `person_keys`; `metrics` (optional) counts lookups
 * and created keys.
 */
export function createKeyring(config: KeyringConfig, db: Db, metrics?: Registry) {
  const master = config.KEYRING_MASTER_KEYS;
  const ttl = config.KEYRING_CACHE_TTL_MS;
  /** subject hex → the unwrapped key (null: shredded or never made), until when it may be used. */
  const cache = new BoundedMap<string, { key: Buffer | null; until: number }>(config.KEYRING_CACHE_SIZE);
  const lookups =
    metrics &&
    counter(metrics, {
      name: 'keyring_lookups_total',
      help: 'Person keys wanted, by where they came from (cache, postgres)',
      labelNames: ['from'],
    });
  const created =
    metrics &&
    counter(metrics, {
      name: 'keyring_keys_created_total',
      help: 'Person keys made for people seen for the first time',
    });

  const hmacOf = (profileKey: string): Buffer =>
    createHmac('sha256', config.KEYRING_SUBJECT_KEY).update(profileKey, 'utf8').digest();
  /**
   * id → its subject (and hex), for ids sealed recently: the HMAC never changes for an id (the
   * subject key is never rotated), so a hot person's events skip it. Bounded like the key cache;
   * it holds no key, only what the Kafka message key already shows.
   */
  const subjects = new BoundedMap<string, { subject: Buffer; hex: string }>(config.KEYRING_CACHE_SIZE);
  const subjectEntry = (id: string) => {
    let entry = subjects.get(id);
    if (entry === undefined) {
      const subject = hmacOf(id);
      entry = { subject, hex: subject.toString('hex') };
      subjects.set(id, entry);
    }
    return entry;
  };
  const subjectOf = (profileKey: string): Buffer => subjectEntry(profileKey).subject;
  const headerOf = (subjects: Buffer[]) => Buffer.concat([Buffer.from([MARK, FORMAT, subjects.length]), ...subjects]);
  /**
   * Keys of messages naming two or more people (with the group's header once `seal` made it), by their subjects,
   * across calls: a derivation costs several µs, and a person's messages keep naming the same ids (a userId beside
   * an anonymousId). A key is reused only while it was derived from the very key objects the key cache gives now (a
   * key read again from Postgres derives afresh), expires with them (KEYRING_CACHE_TTL_MS), is bounded like them,
   * and `shred` forgets them all. Throw-away keys of erased people never enter it.
   */
  type Derived = { parts: Buffer[]; key: Buffer; until: number; header: Buffer | undefined };
  const derived = new BoundedMap<string, Derived>(config.KEYRING_CACHE_SIZE);
  /** The message key of `hexes` (and, once `seal` made it, their header) from the keys `parts` of the key cache. */
  const derivedKey = (hexes: string[], parts: Buffer[], now: number): Derived => {
    const id = hexes.join('');
    const hit = derived.get(id);
    if (
      hit !== undefined &&
      hit.until > now &&
      hit.parts.length === parts.length &&
      hit.parts.every((p, i) => p === parts[i])
    )
      return hit;
    const entry: Derived = { parts, key: messageKey(parts), until: now + ttl, header: undefined };
    if (ttl > 0) {
      derived.delete(id);
      derived.set(id, entry);
    }
    return entry;
  };
  /** Headers of one person's records (the common case), by subject hex: the same bytes every time. */
  const soloHeaders = new BoundedMap<string, Buffer>(config.KEYRING_CACHE_SIZE);
  const soloHeader = (hex: string, subject: Buffer) => {
    let header = soloHeaders.get(hex);
    if (header === undefined) {
      header = headerOf([subject]);
      soloHeaders.set(hex, header);
    }
    return header;
  };

  const wrap = (subject: Buffer, key: Buffer) => encrypt(master.active.key, key, subject);
  const unwrap = (row: Row): Buffer | null => {
    if (row.wrapped === null) return null;
    const mk = master.byId.get(row.master_id ?? '');
    if (!mk) {
      throw new AppError(
        KeyringErrors.MASTER_KEY_MISSING,
        `a person key is wrapped by master key "${row.master_id}", which KEYRING_MASTER_KEYS does not hold`,
        { retryable: true },
      );
    }
    try {
      return decrypt(mk, row.wrapped, row.subject);
    } catch (cause) {
      throw new AppError(
        KeyringErrors.KEY_UNWRAP_FAILED,
        `a person key does not unwrap with master key "${row.master_id}": a different key under that id, or a damaged row`,
        { cause, retryable: true },
      );
    }
  };

  const remember = (hex: string, key: Buffer | null, now: number) => {
    // a refreshed entry is re-inserted: the newest (BoundedMap forgets the oldest past its limit)
    cache.delete(hex);
    cache.set(hex, { key, until: now + ttl });
  };

  const read = async (subjects: Buffer[]): Promise<Row[]> =>
    (
      await db.query<Row>('SELECT subject, wrapped, master_id FROM person_keys WHERE subject = ANY($1::bytea[])', [
        subjects,
      ])
    ).rows;

  /**
   * Reads `missing` from Postgres (hex → key, null when shredded or unknown) and caches them; with `create`, the
   * subjects nobody has a row for get a new key. New rows go in in subject order, so two processes making
   * overlapping keys at once wait on each other's rows in the same order instead of deadlocking.
   */
  async function load(missing: Map<string, Buffer>, create: boolean): Promise<Map<string, Buffer | null>> {
    const now = Date.now();
    const found = new Map<string, Buffer | null>();
    lookups?.inc({ from: 'postgres' }, missing.size);
    const take = (rows: Row[]) => {
      for (const row of rows) {
        const hex = row.subject.toString('hex');
        const key = unwrap(row);
        found.set(hex, key);
        remember(hex, key, now);
      }
    };
    take(await read([...missing.values()]));
    let absent = [...missing.values()].filter((s) => !found.has(s.toString('hex')));
    if (create && absent.length > 0) {
      const fresh = absent.sort(Buffer.compare).map((subject) => ({ subject, key: randomBytes(KEY_BYTES) }));
      const { rows } = await db.query<{ subject: Buffer }>(
        `INSERT INTO person_keys (subject, wrapped, master_id)
         SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::text[]) ON CONFLICT (subject) DO NOTHING RETURNING subject`,
        [fresh.map((f) => f.subject), fresh.map((f) => wrap(f.subject, f.key)), fresh.map(() => master.active.id)],
      );
      created?.inc(rows.length);
      const inserted = new Set(rows.map((r) => r.subject.toString('hex')));
      for (const f of fresh) {
        const hex = f.subject.toString('hex');
        if (!inserted.has(hex)) continue;
        found.set(hex, f.key);
        remember(hex, f.key, now);
      }
      // Made by another process meanwhile (or shredded meanwhile): its row wins.
      absent = absent.filter((s) => !found.has(s.toString('hex')));
      if (absent.length > 0) take(await read(absent));
      absent = absent.filter((s) => !found.has(s.toString('hex')));
    }
    for (const subject of absent) {
      found.set(subject.toString('hex'), null);
      remember(subject.toString('hex'), null, now);
    }
    return found;
  }

  type Flight = Promise<Map<string, Buffer | null>>;
  /**
   * Loads under way, by mode (0: read only, 1: create) and subject hex. A call missing a key that another call is
   * already loading waits for that load instead of asking Postgres again, and the misses of every call made in one
   * turn of the event loop (the requests of one burst) go out together as one load: fewer queries, and none
   * of this process's own inserts wait on each other's rows.
   */
  const flying = [new Map<string, Flight>(), new Map<string, Flight>()] as const;
  const queued: ({ subjects: Map<string, Buffer>; flight: Flight } | undefined)[] = [undefined, undefined];
  const enqueue = (hex: string, subject: Buffer, create: boolean): Flight => {
    const mode = create ? 1 : 0;
    let next = queued[mode];
    if (next === undefined) {
      const subjects = new Map<string, Buffer>();
      const flight: Flight = new Promise((resolve, reject) =>
        setImmediate(() => {
          queued[mode] = undefined;
          load(subjects, create)
            .then(resolve, reject)
            .finally(() => {
              for (const h of subjects.keys()) if (flying[mode].get(h) === flight) flying[mode].delete(h);
            });
        }),
      );
      // Every flight has a caller awaiting it; this only keeps a caller that gave up from leaving it unhandled.
      flight.catch(() => undefined);
      next = queued[mode] = { subjects, flight };
    }
    next.subjects.set(hex, subject);
    flying[mode].set(hex, next.flight);
    return next.flight;
  };

  /**
   * The keys of `subjects` (hex → key, null when shredded or unknown): from the cache, the rest from Postgres (see
   * `flying`); with `create`, the subjects nobody has a row for get a new key.
   */
  async function keysOf(subjects: Map<string, Buffer>, create: boolean): Promise<Map<string, Buffer | null>> {
    const now = Date.now();
    const found = new Map<string, Buffer | null>();
    const waiting: [string, Flight][] = [];
    const flights = flying[create ? 1 : 0];
    for (const [hex, subject] of subjects) {
      const hit = cache.get(hex);
      if (hit && hit.until > now) found.set(hex, hit.key);
      else waiting.push([hex, flights.get(hex) ?? enqueue(hex, subject, create)]);
    }
    lookups?.inc({ from: 'cache' }, found.size);
    if (waiting.length === 0) return found;
    for (const [hex, flight] of waiting) found.set(hex, (await flight).get(hex) ?? null);
    return found;
  }

  return {
    /** The subject of a profile key, as the hex Kafka message key. */
    subjectOf: (profileKey: string): string => subjectEntry(profileKey).hex,

    /**
     * Seals records keyed by profile key: each becomes `{ key: subject hex, value: sealed }`,
     * under its person's key (made on first sight) and, when it names other ids (`names`: every
     * id of the message, placeholders left out by the caller), under theirs too. An erased
     * person's records are sealed under a throw-away key, so they are unreadable from the
     * moment they are written.
     */
    async seal(
      records: readonly { key: string; value: string | Buffer; names?: readonly string[] }[],
    ): Promise<{ key: string; value: Buffer }[]> {
      const wanted = new Map<string, Buffer>();
      // One HMAC per id, cached across calls (subjectEntry); the ids of a record in order, its own first.
      const hexOf = (id: string) => {
        const { subject, hex } = subjectEntry(id);
        wanted.set(hex, subject);
        return hex;
      };
      const subjectsOfRecord = records.map((r): string[] => {
        const hexes = [hexOf(r.key)];
        const names = r.names;
        // Most records name only their own profile key (or that and ids equal to it); the others' ids in order, once.
        if (names !== undefined)
          for (let i = 0; i < names.length && hexes.length < MAX_SUBJECTS; i++) {
            const id = names[i]!;
            if (id !== r.key && names.indexOf(id) === i) hexes.push(hexOf(id));
          }
        return hexes;
      });
      const keys = await keysOf(wanted, true);
      // An erased id gets one throw-away key for the call: never stored, so never recovered.
      const erased = new Set<string>();
      for (const [hex, key] of keys) {
        if (key) continue;
        keys.set(hex, randomBytes(KEY_BYTES));
        erased.add(hex);
      }
      const throwAway = messageKeys();
      const now = Date.now();
      const headerOfAll = (hexes: string[]) => headerOf(hexes.map((hex) => wanted.get(hex)!));
      // One call for every IV of the batch.
      const ivs = randomBytes(IV_BYTES * records.length);
      return records.map((r, i) => {
        const hexes = subjectsOfRecord[i]!;
        const own = hexes[0]!;
        let key: Buffer;
        let header: Buffer;
        if (hexes.length === 1) {
          key = keys.get(own)!;
          header = soloHeader(own, wanted.get(own)!);
        } else if (erased.size > 0 && hexes.some((hex) => erased.has(hex))) {
          key = throwAway(hexes, () => hexes.map((hex) => keys.get(hex)!));
          header = headerOfAll(hexes);
        } else {
          // The key and the header of this group of people, both kept across calls.
          const entry = derivedKey(
            hexes,
            hexes.map((hex) => keys.get(hex)!),
            now,
          );
          key = entry.key;
          header = entry.header ??= headerOfAll(hexes);
        }
        return { key: own, value: sealText(key, header, r.value, ivs.subarray(i * IV_BYTES, (i + 1) * IV_BYTES)) };
      });
    },

    /** Opens Kafka values (one key lookup for the lot); never throws for a value, only when the keys cannot be read. */
    async open(values: readonly (Buffer | null)[]): Promise<Opened[]> {
      const subjects = new Map<string, Buffer>();
      // One pass over the values: each sealed one's subjects (hex) are read once, for the lookup and the opening.
      const named = values.map((v): string[] | undefined => {
        if (!isSealed(v)) return undefined;
        const n = v[2]!;
        const hexes = new Array<string>(n);
        for (let i = 0; i < n; i++) {
          const start = 3 + i * SUBJECT_BYTES;
          const hex = v.toString('hex', start, start + SUBJECT_BYTES);
          if (!subjects.has(hex)) subjects.set(hex, v.subarray(start, start + SUBJECT_BYTES));
          hexes[i] = hex;
        }
        return hexes;
      });
      const keys = subjects.size === 0 ? new Map<string, Buffer | null>() : await keysOf(subjects, false);
      const now = Date.now();
      return values.map((v, i): Opened => {
        const hexes = named[i];
        if (hexes === undefined) return CLEAR;
        const header = v!.subarray(0, headerBytes(hexes.length));
        // Any person it names erased: unreadable.
        if (hexes.some((hex) => !keys.get(hex))) return SHREDDED;
        const key =
          hexes.length === 1
            ? keys.get(hexes[0]!)!
            : derivedKey(
                hexes,
                hexes.map((hex) => keys.get(hex)!),
                now,
              ).key;
        try {
          return new OpenedValue(decrypt(key, v!.subarray(header.length), header), key, header);
        } catch (err) {
          return {
            kind: 'broken',
            reason: `sealed value does not open with its person's key (${(err as Error).message})`,
          };
        }
      });
    },

    /**
     * Destroys the keys of `profileKeys` for good (an erasure; call it in the erasure's
     * transaction): each row becomes a tombstone, also for an id nobody had a key for yet, so
     * a key can never be made for it again. This process forgets them at once; others within
     * their cache TTL.
     */
    async shred(tx: Db, profileKeys: readonly string[]): Promise<void> {
      const subjects = profileKeys.map(subjectOf);
      await tx.query(
        `INSERT INTO person_keys (subject, wrapped, master_id, shredded_at)
         SELECT s, NULL, NULL, now() FROM unnest($1::bytea[]) s
         ON CONFLICT (subject) DO UPDATE SET wrapped = NULL, master_id = NULL, shredded_at = coalesce(person_keys.shredded_at, now())`,
        [subjects],
      );
      for (const s of subjects) {
        const hex = s.toString('hex');
        cache.delete(hex);
        // A load under way may have read the key before this: later calls load afresh.
        for (const flights of flying) flights.delete(hex);
      }
      derived.clear();
    },

    /**
     * Master key rotation: re-wraps up to `batch` live keys that are not under the active master
     * key; resolves with how many it re-wrapped (0: done). Safe to run while services run.
     */
    async rewrap(pool: Pool, batch = 1000): Promise<number> {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const { rows } = await client.query<Row>(
          `SELECT subject, wrapped, master_id FROM person_keys WHERE wrapped IS NOT NULL AND master_id <> $1
           LIMIT $2 FOR UPDATE SKIP LOCKED`,
          [master.active.id, batch],
        );
        const rewrapped = rows.map((r) => ({ subject: r.subject, wrapped: wrap(r.subject, unwrap(r)!) }));
        if (rewrapped.length > 0) {
          await client.query(
            `UPDATE person_keys p SET wrapped = n.wrapped, master_id = $3
             FROM unnest($1::bytea[], $2::bytea[]) AS n(subject, wrapped) WHERE p.subject = n.subject AND p.wrapped IS NOT NULL`,
            [rewrapped.map((r) => r.subject), rewrapped.map((r) => r.wrapped), master.active.id],
          );
        }
        await client.query('COMMIT');
        return rewrapped.length;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
  };
}
