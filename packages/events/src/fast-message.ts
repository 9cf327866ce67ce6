import { EVENT_ID_PATTERN, TAG_PATTERN } from './fields';
import { copyKeys, eventTypes, fastContext, isPlain, isString, targetTypes, text } from './fast-shape';
import { messageTimeSchema, type TopicMessage } from './message';
import { findUnstorable } from './storable';

/**
 * The consumers' hot path: a hand-compiled check of `topicMessageSchema` for a message as JSON.parse
 * gives it. It answers the message exactly as `topicMessageSchema.parse` would (the same fields and
 * values, unknown keys stripped where zod strips them and kept where it keeps them, objects rebuilt in
 * zod's key order), or `undefined` whenever the input is anything else — invalid, or valid in a form
 * it does not handle — and the caller then asks zod, which also words every error, so a dead letter's
 * reason is zod's. It may only ever accept what zod accepts: each rule below is the schema's rule
 * (message.ts, fields.ts), never looser, and the storable check is the same function zod's refinement
 * calls, on the same output. packages/events/test/fast-message.test.ts compares the two on generated
 * messages. zod costs 3–5 µs per message per consumer group; this a fraction of that (BENCHMARKS.md).
 */

// zod's own pattern for `z.iso.datetime()`, read from the schema the messages use, so the two cannot differ.
const TIME_PATTERN: RegExp = (() => {
  const pattern = (messageTimeSchema as unknown as { _zod: { pattern?: unknown } })._zod.pattern;
  if (!(pattern instanceof RegExp))
    throw new Error('zod no longer exposes the datetime pattern: update fast-message.ts');
  return pattern;
})();

const isTime = (v: unknown): v is string => typeof v === 'string' && TIME_PATTERN.test(v);
const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
/** zod 4's `.int()`: a safe integer. */
const isWhole = (v: unknown): v is number => Number.isSafeInteger(v);

/** A trait value of `traitValueSchema`: a string of at most 256 characters, a finite number, a boolean or null. */
const isTraitValue = (v: unknown) =>
  v === null || typeof v === 'boolean' || isNumber(v) || (typeof v === 'string' && v.length <= 256);

function event(m: Record<string, unknown>): Record<string, unknown> | undefined {
  const { userId, anonymousId, target, tags, dwellMs, amount, currency, quantity, orderId } = m;
  if (!eventTypes.has(m.type)) return undefined;
  if (userId !== undefined && !text(userId, 128)) return undefined;
  if (anonymousId !== undefined && !text(anonymousId, 128)) return undefined;
  if (!isPlain(target) || !targetTypes.has(target.type) || !text(target.id, 128)) return undefined;
  // strictObject: exactly type and id
  if (Object.keys(target).length !== 2) return undefined;
  if (!Array.isArray(tags)) return undefined;
  for (const t of tags) if (!isString(t) || !TAG_PATTERN.test(t)) return undefined;
  if (dwellMs !== undefined && !(isWhole(dwellMs) && dwellMs >= 0)) return undefined;
  if (amount !== undefined && !(isNumber(amount) && amount >= 0)) return undefined;
  if (currency !== undefined && !isString(currency)) return undefined;
  if (quantity !== undefined && !(isWhole(quantity) && quantity >= 1)) return undefined;
  if (orderId !== undefined && !text(orderId, 128)) return undefined;
  let ctx: Record<string, unknown> | undefined;
  if (m.context !== undefined && (ctx = fastContext(m.context)) === undefined) return undefined;
  // In the schema's key order, optional fields set one by one (no spreads: one object on V8's fast path).
  const e: Record<string, unknown> = { v: 1, kind: 'event', eventId: m.eventId, source: m.source, type: m.type };
  if (userId !== undefined) e.userId = userId;
  if (anonymousId !== undefined) e.anonymousId = anonymousId;
  e.profileKey = m.profileKey;
  e.occurredAt = m.occurredAt;
  e.receivedAt = m.receivedAt;
  e.target = { type: target.type, id: target.id };
  e.tags = tags.slice();
  if (dwellMs !== undefined) e.dwellMs = dwellMs;
  if (amount !== undefined) e.amount = amount;
  if (currency !== undefined) e.currency = currency;
  if (quantity !== undefined) e.quantity = quantity;
  if (orderId !== undefined) e.orderId = orderId;
  if (ctx !== undefined) e.context = ctx;
  return e;
}

function identify(m: Record<string, unknown>): Record<string, unknown> | undefined {
  const { userId, anonymousId, traits } = m;
  if (!text(userId, 128)) return undefined;
  if (anonymousId !== undefined && !text(anonymousId, 128)) return undefined;
  if (!isPlain(traits)) return undefined;
  for (const k of Object.keys(traits)) if (!isTraitValue(traits[k])) return undefined;
  const t = copyKeys(traits);
  if (t === undefined) return undefined;
  const out: Record<string, unknown> = { v: 1, kind: 'identify', eventId: m.eventId, source: m.source, userId };
  if (anonymousId !== undefined) out.anonymousId = anonymousId;
  out.profileKey = m.profileKey;
  out.occurredAt = m.occurredAt;
  out.receivedAt = m.receivedAt;
  out.traits = t;
  return out;
}

function alias(m: Record<string, unknown>): Record<string, unknown> | undefined {
  const { userId, previousId } = m;
  if (!text(userId, 128) || !text(previousId, 128)) return undefined;
  return {
    v: 1,
    kind: 'alias',
    eventId: m.eventId,
    source: m.source,
    userId,
    previousId,
    profileKey: m.profileKey,
    occurredAt: m.occurredAt,
    receivedAt: m.receivedAt,
  };
}

/** The message as `topicMessageSchema` parses it, or undefined: ask zod (invalid, or a shape this does not cover). */
export function fastTopicMessage(input: unknown): TopicMessage | undefined {
  if (!isPlain(input) || input.v !== 1) return undefined;
  // The fields every kind has.
  const { eventId, source, profileKey, occurredAt, receivedAt } = input;
  if (!(isString(eventId) && EVENT_ID_PATTERN.test(eventId)) || !text(source, Infinity)) return undefined;
  if (!text(profileKey, 128) || !isTime(occurredAt) || !isTime(receivedAt)) return undefined;
  const kind = input.kind;
  const out =
    kind === 'event'
      ? event(input)
      : kind === 'identify'
        ? identify(input)
        : kind === 'alias'
          ? alias(input)
          : undefined;
  // zod's refinement, on zod's output (unknown keys stripped): the same function, so the same answer.
  if (out === undefined || findUnstorable(out) !== undefined) return undefined;
  return out as TopicMessage;
}
