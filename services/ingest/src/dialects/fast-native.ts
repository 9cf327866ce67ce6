import {
  EVENT_ID_PATTERN,
  TAG_PATTERN,
  eventTypes,
  fastContext,
  isPlain,
  isString,
  targetTypes,
  text,
} from '@pstream/events';
import { CURRENCY_PATTERN, MAX_TAGS, occurredAtSchema, type NativeEvent } from './envelope';

/**
 * The hot path of `normalizeEvent`: a hand-compiled check of `nativeEventSchema` for events in the
 * plain shape nearly every client sends. It answers the event exactly as `nativeEventSchema.parse`
 * would (same fields, same values, objects rebuilt in zod's key order), or `undefined` whenever the
 * input is anything else — invalid, or valid in a form it does not handle — and the caller then asks
 * zod, which also words every error. So it may only ever accept what zod accepts: each rule below
 * is the schema's rule (envelope.ts, @pstream/events fields.ts), never looser, and
 * services/ingest/test/dialects/fast-native.test.ts compares the two on generated events. zod cost ~3-5 µs per event in
 * ingest's profile; this costs a fraction of a µs.
 */

const KNOWN = new Set([
  'eventId',
  'type',
  'userId',
  'anonymousId',
  'occurredAt',
  'target',
  'tags',
  'dwellMs',
  'amount',
  'currency',
  'quantity',
  'orderId',
  'context',
]);
const PURCHASE_ONLY = ['amount', 'currency', 'quantity', 'orderId'] as const;

const number = (v: unknown, min: number, max: number): v is number =>
  typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max;
const whole = (v: unknown, min: number, max: number): v is number => number(v, min, max) && Number.isInteger(v);

/** An optional person id: absent, null or "" are absent; else 1-128 characters. `false`: not in the plain shape. */
function personId(v: unknown): string | undefined | false {
  if (v === undefined || v === null || v === '') return undefined;
  return text(v, 128) ? v : false;
}

/** The event as `nativeEventSchema` parses it, or undefined: ask zod (invalid, or a shape this does not cover). */
export function fastNativeEvent(input: unknown): NativeEvent | undefined {
  if (!isPlain(input)) return undefined;
  for (const k of Object.keys(input)) if (!KNOWN.has(k) || input[k] === undefined) return undefined;
  const { eventId, type, occurredAt, target, tags, dwellMs, amount, currency, quantity, orderId } = input;
  if (eventId !== undefined && !(isString(eventId) && EVENT_ID_PATTERN.test(eventId))) return undefined;
  if (!eventTypes.has(type)) return undefined;
  const userId = personId(input.userId);
  const anonymousId = personId(input.anonymousId);
  if (userId === false || anonymousId === false || (userId === undefined && anonymousId === undefined))
    return undefined;
  if (occurredAt !== undefined && !(isString(occurredAt) && occurredAtSchema.safeParse(occurredAt).success))
    return undefined;
  if (!isPlain(target) || !targetTypes.has(target.type) || !text(target.id, 128)) return undefined;
  if (Object.keys(target).length !== 2) return undefined;
  let tagList: string[] = [];
  if (tags !== undefined) {
    if (!Array.isArray(tags) || tags.length > MAX_TAGS) return undefined;
    for (const t of tags) if (!isString(t) || !TAG_PATTERN.test(t)) return undefined;
    tagList = tags.slice() as string[];
  }
  if (dwellMs !== undefined && !whole(dwellMs, 0, 86_400_000)) return undefined;
  if ((type === 'dwell') !== (dwellMs !== undefined)) return undefined;
  if (type === 'purchase') {
    if (!number(amount, 0, 1e12) || !(isString(currency) && CURRENCY_PATTERN.test(currency))) return undefined;
    if (quantity !== undefined && !whole(quantity, 1, 1_000_000)) return undefined;
    if (orderId !== undefined && !text(orderId, 128)) return undefined;
  } else if (PURCHASE_ONLY.some((k) => input[k] !== undefined)) return undefined;
  let ctx: Record<string, unknown> | undefined;
  if (input.context !== undefined && (ctx = fastContext(input.context)) === undefined) return undefined;
  // Optional fields set one by one (no spreads: one object, built on V8's fast path).
  const e: Record<string, unknown> = { type, target: { type: target.type, id: target.id }, tags: tagList };
  if (eventId !== undefined) e.eventId = eventId;
  if (userId !== undefined) e.userId = userId;
  if (anonymousId !== undefined) e.anonymousId = anonymousId;
  if (occurredAt !== undefined) e.occurredAt = occurredAt;
  if (dwellMs !== undefined) e.dwellMs = dwellMs;
  if (amount !== undefined) e.amount = amount;
  if (currency !== undefined) e.currency = currency;
  if (quantity !== undefined) e.quantity = quantity;
  if (orderId !== undefined) e.orderId = orderId;
  if (ctx !== undefined) e.context = ctx;
  return e as NativeEvent;
}
