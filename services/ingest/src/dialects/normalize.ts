import { randomUUID } from 'node:crypto';
import {
  EARLIEST_EVENT_TIME,
  MAX_FUTURE_MS,
  nativeAliasSchema,
  nativeEventSchema,
  nativeIdentifySchema,
} from './envelope';
import { fastNativeEvent } from './fast-native';
import {
  findUnstorable,
  isPlaceholderId,
  type AliasMessage,
  type IdentifyMessage,
  type ProfileEvent,
} from '@pstream/events';
import { fieldErrors, type FieldError } from '@pstream/platform';

export type Normalized<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

/** What every normalizer needs: the source (from the write key) and the receiving time. */
export type NormalizeOptions = { source: string; now: number };

const fail = (path: string, message: string): { ok: false; errors: FieldError[] } => ({
  ok: false,
  errors: [{ path, message }],
});

/**
 * The event time in epoch ms (default: received), or what is wrong with it: more than 24 h ahead,
 * or before EARLIEST_EVENT_TIME (the schemas have checked it is a real ISO date-time).
 */
function eventTime(occurredAt: string | undefined, now: number): number | FieldError {
  const occurred = occurredAt === undefined ? now : Date.parse(occurredAt);
  if (occurred < EARLIEST_EVENT_TIME)
    return { path: 'occurredAt', message: `is before ${EARLIEST_EVENT_ISO}, the earliest event time ingest accepts` };
  return occurred - now > MAX_FUTURE_MS ? { path: 'occurredAt', message: 'is more than 24 h in the future' } : occurred;
}
const EARLIEST_EVENT_ISO = new Date(EARLIEST_EVENT_TIME).toISOString();

/**
 * ISO text of an epoch-ms time, remembering the last one of each kind (`slot` 0: event times, 1: receiving times):
 * every event of a request shares its receiving time (and many their event time), and formatting dates showed up in
 * ingest's CPU profile. One memo for both missed on every event whose time differs from its receiving time.
 */
const lastIso = [
  { ms: Number.NaN, text: '' },
  { ms: Number.NaN, text: '' },
];
function isoTime(ms: number, slot: 0 | 1 = 0): string {
  const last = lastIso[slot]!;
  if (ms !== last.ms) {
    last.text = new Date(ms).toISOString();
    last.ms = ms;
  }
  return last.text;
}

/** Drops ids SDKs send when they have none ("anonymous", "0", …): they must never name a profile. */
const real = (id: string | undefined): string | undefined => (id === undefined || isPlaceholderId(id) ? undefined : id);

/**
 * Validates one native envelope and turns it into the message we put on Kafka, or lists
 * everything wrong with it. `now` is the receiving time: the default event time, and the
 * reference for the 24 h future limit. A placeholder id is treated as absent, so events with
 * `userId: "anonymous"` land on the anonymousId's profile, and an event with only
 * placeholders is refused rather than piled onto one shared "anonymous" profile.
 */
export function normalizeEvent(input: unknown, options: NormalizeOptions): Normalized<ProfileEvent> {
  const unstorable = findUnstorable(input);
  if (unstorable) return fail(unstorable.path, unstorable.message);
  // The compiled check answers for the plain shape nearly every event has; zod for the rest (and for every error's
  // words).
  let e = fastNativeEvent(input);
  if (e === undefined) {
    const parsed = nativeEventSchema.safeParse(input);
    if (!parsed.success) return { ok: false, errors: fieldErrors(parsed.error.issues) };
    e = parsed.data;
  }
  const occurred = eventTime(e.occurredAt, options.now);
  if (typeof occurred !== 'number') return { ok: false, errors: [occurred] };
  const userId = real(e.userId);
  const anonymousId = real(e.anonymousId);
  const profileKey = userId ?? anonymousId;
  if (profileKey === undefined)
    return fail('userId', 'userId or anonymousId is required; placeholder ids such as "anonymous" or "0" do not count');
  // Built field by field in the order the message has always had (its JSON on Kafka is the same): optional fields
  // spread from `cond && { … }` made a throw-away object per field present and copied it on V8's slow path.
  const m: Record<string, unknown> = {
    v: 1,
    kind: 'event',
    eventId: e.eventId ?? randomUUID(),
    source: options.source,
    type: e.type,
  };
  if (userId !== undefined) m.userId = userId;
  if (anonymousId !== undefined) m.anonymousId = anonymousId;
  m.profileKey = profileKey;
  m.occurredAt = isoTime(occurred);
  m.receivedAt = isoTime(options.now, 1);
  m.target = e.target;
  m.tags = distinct(e.tags);
  if (e.dwellMs !== undefined) m.dwellMs = e.dwellMs;
  if (e.amount !== undefined) m.amount = e.amount;
  if (e.currency !== undefined) m.currency = e.currency;
  if (e.quantity !== undefined) m.quantity = e.quantity;
  if (e.orderId !== undefined) m.orderId = e.orderId;
  if (e.context !== undefined) m.context = e.context;
  return { ok: true, value: m as ProfileEvent };
}

/** `[...new Set(tags)]` without the Set: a new array of the tags in order, each once (at most MAX_TAGS of them). */
function distinct(tags: readonly string[]): string[] {
  const out: string[] = [];
  for (const tag of tags) if (!out.includes(tag)) out.push(tag);
  return out;
}

/**
 * Validates an identify and builds its message, keyed by userId. A placeholder userId is
 * refused: its traits would land on a profile shared by every stranger. A placeholder
 * anonymousId (or one equal to userId) is dropped from the message — the traits still apply,
 * but no merge link is made (docs/model.md §4.4).
 */
export function normalizeIdentify(input: unknown, options: NormalizeOptions): Normalized<IdentifyMessage> {
  const unstorable = findUnstorable(input);
  if (unstorable) return fail(unstorable.path, unstorable.message);
  const parsed = nativeIdentifySchema.safeParse(input);
  if (!parsed.success) return { ok: false, errors: fieldErrors(parsed.error.issues) };
  const e = parsed.data;
  if (isPlaceholderId(e.userId)) return fail('userId', 'is a placeholder id ("anonymous", "0", …), not a known user');
  const occurred = eventTime(e.occurredAt, options.now);
  if (typeof occurred !== 'number') return { ok: false, errors: [occurred] };
  const anonymousId = real(e.anonymousId);
  return {
    ok: true,
    value: {
      v: 1,
      kind: 'identify',
      eventId: e.eventId ?? randomUUID(),
      source: options.source,
      userId: e.userId,
      ...(anonymousId !== undefined && anonymousId !== e.userId && { anonymousId }),
      profileKey: e.userId,
      occurredAt: isoTime(occurred),
      receivedAt: isoTime(options.now, 1),
      traits: e.traits,
    },
  };
}

/**
 * Validates an alias and builds its message, keyed by userId. An alias does nothing but merge,
 * so a placeholder on either side, or the same id twice, is refused.
 */
export function normalizeAlias(input: unknown, options: NormalizeOptions): Normalized<AliasMessage> {
  const unstorable = findUnstorable(input);
  if (unstorable) return fail(unstorable.path, unstorable.message);
  const parsed = nativeAliasSchema.safeParse(input);
  if (!parsed.success) return { ok: false, errors: fieldErrors(parsed.error.issues) };
  const e = parsed.data;
  for (const field of ['userId', 'previousId'] as const) {
    if (isPlaceholderId(e[field]))
      return fail(field, 'is a placeholder id ("anonymous", "0", …) and never merges profiles');
  }
  if (e.previousId === e.userId) return fail('previousId', 'must differ from userId');
  const occurred = eventTime(e.occurredAt, options.now);
  if (typeof occurred !== 'number') return { ok: false, errors: [occurred] };
  return {
    ok: true,
    value: {
      v: 1,
      kind: 'alias',
      eventId: e.eventId ?? randomUUID(),
      source: options.source,
      userId: e.userId,
      previousId: e.previousId,
      profileKey: e.userId,
      occurredAt: isoTime(occurred),
      receivedAt: isoTime(options.now, 1),
    },
  };
}
