import { createHash, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { CHANNELS, EVENT_TYPES, type EventType } from '@pstream/events';
import type { AliasMessage, IdentifyMessage, ProfileEvent, TopicMessage } from '@pstream/events';
import { fieldErrors, type FieldError } from '@pstream/platform';
import { isObject } from '../json';
import { normalizeAlias, normalizeEvent, normalizeIdentify, type NormalizeOptions, type Normalized } from './normalize';

/**
 * Segment's e-commerce event names (their "E-commerce Events" spec) that mean each of our types
 * (docs/events.md §3.3), none for a type Segment has no name for. Keyed by every event type, so a
 * new type does not compile until it is decided here. Our own names (`click`, `follow`, …) are
 * accepted as they are.
 */
const SEGMENT_NAMES_BY_TYPE: Readonly<Record<EventType, readonly string[]>> = {
  follow: [],
  unfollow: [],
  click: ['Product Clicked', 'Product Viewed'],
  dwell: [],
  like: [],
  comment: ['Product Reviewed'],
  share: ['Product Shared'],
  favorite: ['Product Added to Wishlist'],
  purchase: ['Order Completed'],
};
/** Segment event name → our type. */
export const SEGMENT_EVENT_NAMES: Readonly<Record<string, EventType>> = Object.fromEntries(
  EVENT_TYPES.flatMap((type) => SEGMENT_NAMES_BY_TYPE[type].map((name) => [name, type])),
);
/**
 * The rest of the common events of Segment's e-commerce spec, accepted and deliberately ignored,
 * each with why (docs/tracking.md): none is one of §3.1's types, and folding it into one would
 * change what that type means. They are counted in `ingest_events_ignored_total` by name.
 */
export const SEGMENT_IGNORED_EVENT_NAMES: Readonly<Record<string, string>> = {
  'Product Added':
    'a cart change is not in the profile model: as a favorite it would count as a social interaction (§4.3), as a click as a second visit; the Order Completed that may follow is what counts',
  'Product Removed': 'a cart change is not in the profile model, and it undoes nothing a profile recorded',
  'Checkout Started': 'an intent to buy, not a purchase: the Order Completed that may follow carries the order',
  'Product List Viewed':
    'a list names no one target; the products opened from it arrive as Product Clicked or Product Viewed',
  'Products Searched': 'a search query names no target; the products opened from the results arrive as Product Clicked',
};
/** Every event name a Segment `track` may carry, for the error that refuses any other. */
export const SUPPORTED_EVENT_NAMES: readonly string[] = [...EVENT_TYPES, ...Object.keys(SEGMENT_EVENT_NAMES)];

// Segment ids may be numbers in some SDKs; they name the same person as their string form.
// `null` and "" (analytics.js sends `userId: null` before identify) mean "no id", as in the native API.
const segmentId = z
  .union([z.string(), z.number().transform(String), z.null()])
  .transform((v) => (v === null || v === '' ? undefined : v))
  .describe('a string (numbers are read as strings); null or "" count as absent');
const record = z.record(z.string(), z.unknown());
const common = {
  messageId: z
    .string()
    .min(1)
    .max(512)
    .optional()
    .describe('becomes eventId (hashed when it does not fit our id syntax)'),
  userId: segmentId.optional(),
  anonymousId: segmentId.optional(),
  timestamp: z.string().optional().describe('ISO-8601 with a time zone; becomes occurredAt'),
  context: record.optional().describe('channel, device and location are kept; the rest is ignored'),
};

/**
 * Segment's payloads as their SDKs send them. Loose on purpose: SDKs add fields of their own
 * (`integrations`, `_metadata`, `sentAt`, `writeKey`, …) that we ignore; what we read is checked
 * through the native rules after mapping, and errors name the Segment field.
 */
export const segmentTrackSchema = z.looseObject({
  type: z.literal('track').optional(),
  event: z
    .string()
    .min(1)
    .describe(`one of: ${SUPPORTED_EVENT_NAMES.join(', ')}`),
  properties: record
    .optional()
    .describe(
      'product_id or target (an object {type,id} or "type:id") names the target; category, brand and tags become tags; Order Completed: products[], revenue/total, currency, order_id (its lines count as one purchase)',
    ),
  ...common,
});
export const segmentIdentifySchema = z.looseObject({
  type: z.literal('identify').optional(),
  traits: record.optional(),
  ...common,
});
export const segmentAliasSchema = z.looseObject({
  type: z.literal('alias').optional(),
  previousId: segmentId,
  userId: segmentId,
  messageId: common.messageId,
  timestamp: common.timestamp,
  context: common.context,
});
/** Segment `page` (web) and `screen` (apps): a click when the properties name a product, content or target. */
export const segmentPageSchema = z.looseObject({
  type: z.enum(['page', 'screen']).optional(),
  name: z.string().nullish(),
  category: z.string().nullish(),
  properties: record
    .optional()
    .describe(
      'product_id, content_id or target names what was viewed (then it is a click); without one the call is accepted and ignored',
    ),
  ...common,
});
/** Segment `group`: accepted and ignored (profiles have no accounts). */
export const segmentGroupSchema = z.looseObject({
  type: z.literal('group').optional(),
  groupId: segmentId.optional(),
  traits: record.optional(),
  ...common,
});
export const segmentBatchSchema = z.looseObject({
  batch: z
    .array(
      z.union([segmentTrackSchema, segmentIdentifySchema, segmentAliasSchema, segmentPageSchema, segmentGroupSchema]),
    )
    .describe('items of type track, identify, alias, page, screen or group'),
  context: record.optional().describe('merged into every item (the item’s own keys win)'),
});

/**
 * A mapped Segment call: its messages, or its errors. A call Segment accepts but that means
 * nothing to a profile (a `group`, a `page` without a product, an event name we do not map)
 * is accepted with no message, and `ignored` says why.
 */
export type SegmentMapped<T> = Normalized<T[]> & { ignored?: string };
const ignore = (reason: string): { ok: true; value: never[]; ignored: string } => ({
  ok: true,
  value: [],
  ignored: reason,
});

/** A mapped item: native input plus, for error messages, which Segment field each native path came from. */
type Mapped = { native: Record<string, unknown>; origin: Record<string, string> };

const ID = /^[A-Za-z0-9._:-]{1,120}$/;
/**
 * Our eventId for a Segment messageId. Ids that fit our syntax (with room for a `:n` suffix)
 * are kept; others are hashed, so a retry of the same message still maps to the same id and
 * the consumers' (source, eventId) dedupe holds.
 */
export function eventIdFromMessageId(messageId: string | undefined): string | undefined {
  if (messageId === undefined) return undefined;
  return ID.test(messageId) ? messageId : `m-${createHash('sha256').update(messageId).digest('base64url')}`;
}

const str = (v: unknown): string | undefined =>
  typeof v === 'string' && v.trim() !== '' ? v.trim() : typeof v === 'number' ? String(v) : undefined;
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/**
 * Segment's `context` → ours: channel, device and geo (from `location`); top-level batch context merged under the
 * item's.
 */
function mapContext(own: unknown, shared: unknown): Record<string, unknown> | undefined {
  const ctx = { ...(isObject(shared) ? shared : {}), ...(isObject(own) ? own : {}) };
  const out: Record<string, unknown> = {};
  const channel = ctx.channel;
  if (typeof channel === 'string' && (CHANNELS as readonly string[]).includes(channel)) out.channel = channel;
  else if (isObject(ctx.campaign)) out.channel = 'campaign';
  if (isObject(ctx.device)) out.device = ctx.device;
  if (isObject(ctx.location)) {
    const { city, country, region } = ctx.location;
    const geo = Object.fromEntries(Object.entries({ city, country, region }).filter(([, v]) => typeof v === 'string'));
    if (Object.keys(geo).length > 0) out.geo = geo;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** `properties.target` ({type,id} or "type:id"), else `product_id` → a product, else `content_id` → content. */
function mapTarget(p: Record<string, unknown>, origin: Record<string, string>, fallbackShop?: string): unknown {
  const t = p.target;
  if (isObject(t)) {
    origin.target = 'properties.target';
    return t;
  }
  if (typeof t === 'string') {
    origin.target = 'properties.target';
    const colon = t.indexOf(':');
    return colon < 0 ? { type: undefined, id: t } : { type: t.slice(0, colon), id: t.slice(colon + 1) };
  }
  const productId = str(p.product_id);
  if (productId !== undefined) {
    origin.target = 'properties.product_id';
    return { type: 'product', id: productId };
  }
  const contentId = str(p.content_id);
  if (contentId !== undefined) {
    origin.target = 'properties.content_id';
    return { type: 'content', id: contentId };
  }
  if (fallbackShop !== undefined) {
    origin.target = 'properties.affiliation';
    return { type: 'shop', id: fallbackShop };
  }
  origin.target = 'properties.product_id';
  return undefined;
}

/** `category` and `brand` become `category:…`/`brand:…`; `properties.tags` are added as they are. */
function mapTags(from: Record<string, unknown>, at: string, extra: unknown, origin: Record<string, string>): string[] {
  const tags: string[] = [];
  for (const dim of ['category', 'brand'] as const) {
    const v = str(from[dim]);
    if (v !== undefined) {
      origin[`tags.${tags.length}`] = `${at}.${dim}`;
      tags.push(`${dim}:${v}`);
    }
  }
  if (Array.isArray(extra)) {
    extra.forEach((t, i) => {
      origin[`tags.${tags.length}`] = `properties.tags.${i}`;
      tags.push(t as string);
    });
  } else if (extra !== undefined) {
    origin[`tags.${tags.length}`] = 'properties.tags';
    tags.push(extra as string);
  }
  return tags;
}

type Track = z.output<typeof segmentTrackSchema>;
type Page = z.output<typeof segmentPageSchema>;

function base(
  item: Track | Page,
  type: EventType,
  sharedContext: unknown,
  origin: Record<string, string>,
): Record<string, unknown> {
  Object.assign(origin, {
    eventId: 'messageId',
    occurredAt: 'timestamp',
    type: 'event',
    'context.geo': 'context.location',
  });
  const context = mapContext(item.context, sharedContext);
  return {
    type,
    ...(item.userId !== undefined && { userId: item.userId }),
    ...(item.anonymousId !== undefined && { anonymousId: item.anonymousId }),
    ...(item.timestamp !== undefined && { occurredAt: item.timestamp }),
    ...(context !== undefined && { context }),
  };
}

/** One Segment `track` → native events: one, or one purchase line per product for `Order Completed`. */
function mapTrack(
  item: Track,
  sharedContext: unknown,
): { ok: true; mapped: Mapped[] } | { ok: false; errors: FieldError[] } | { ignored: string } {
  // Own keys only: an event named "toString" or "constructor" is a name like any other, not a type.
  const own = <T>(names: Readonly<Record<string, T>>) =>
    Object.hasOwn(names, item.event) ? names[item.event] : undefined;
  const type =
    own(SEGMENT_EVENT_NAMES) ??
    ((EVENT_TYPES as readonly string[]).includes(item.event) ? (item.event as EventType) : undefined);
  if (type === undefined) {
    const why = own(SEGMENT_IGNORED_EVENT_NAMES);
    return {
      ignored: why
        ? `event "${item.event}" is ignored: ${why}`
        : `event "${item.event}" is not one we map; mapped: ${SUPPORTED_EVENT_NAMES.join(', ')}`,
    };
  }
  const p = item.properties ?? {};
  const eventId = eventIdFromMessageId(item.messageId);
  const one = (extra: (origin: Record<string, string>) => Record<string, unknown>, idSuffix = ''): Mapped => {
    const origin: Record<string, string> = {};
    const native = { ...base(item, type, sharedContext, origin), ...extra(origin) };
    if (eventId !== undefined) native.eventId = eventId + idSuffix;
    return { native, origin };
  };

  if (type === 'dwell') {
    return {
      ok: true,
      mapped: [
        one(
          (o) => (
            (o.dwellMs = 'properties.dwellMs'),
            { target: mapTarget(p, o), tags: mapTags(p, 'properties', p.tags, o), dwellMs: p.dwellMs ?? p.dwell_ms }
          ),
        ),
      ],
    };
  }
  if (type !== 'purchase') {
    return { ok: true, mapped: [one((o) => ({ target: mapTarget(p, o), tags: mapTags(p, 'properties', p.tags, o) }))] };
  }
  return mapPurchase(item, p, one);
}

const round = (x: number) => Math.round(x * 1e6) / 1e6;

/** An `Order Completed` names at most this many products: each becomes a message (docs/events.md §3.3). */
export const MAX_ORDER_PRODUCTS = 100;

/**
 * A purchase: with `products[]`, one purchase event per product (line item), each worth price × quantity (or, when
 * a price is missing, the order's `revenue`/`total` shared by quantity); without products, one
 * purchase for the order, worth `revenue`, else `total`, else `amount`, on the target the
 * properties name (product_id, target, or the `affiliation` as a shop). `order_id` (or `orderId`)
 * goes on every line item (without one, the call's messageId names the order), so the facts count
 * the order once (§4.2) while each product keeps its own interest weight (§4.1).
 */
function mapPurchase(
  item: Track,
  p: Record<string, unknown>,
  one: (extra: (origin: Record<string, string>) => Record<string, unknown>, idSuffix?: string) => Mapped,
): { ok: true; mapped: Mapped[] } | { ok: false; errors: FieldError[] } {
  const orderAmount = num(p.revenue) ?? num(p.total) ?? num(p.amount);
  const amountField =
    num(p.revenue) !== undefined
      ? 'properties.revenue'
      : num(p.total) !== undefined
        ? 'properties.total'
        : 'properties.amount';
  // Segment's spec names it order_id; some SDKs and older docs send orderId.
  const orderField = p.order_id !== undefined ? 'order_id' : 'orderId';
  const products =
    Array.isArray(p.products) && p.products.length > 0 && item.event === 'Order Completed' ? p.products : undefined;
  if (products !== undefined && products.length > MAX_ORDER_PRODUCTS) {
    return {
      ok: false,
      errors: [
        {
          path: 'properties.products',
          message: `at most ${MAX_ORDER_PRODUCTS} products per order, got ${products.length}`,
        },
      ],
    };
  }
  // The line items of one call are one order even when the client names none: then the call's
  // own id (messageId, stable across SDK retries) names it.
  const orderId =
    p[orderField] ??
    (products !== undefined && products.length > 1
      ? `msg:${eventIdFromMessageId(item.messageId) ?? randomUUID()}`
      : undefined);
  const money = (o: Record<string, string>) => {
    o.currency = 'properties.currency';
    o.orderId = `properties.${orderField}`;
    return {
      currency: p.currency,
      ...(orderId !== undefined && { orderId: typeof orderId === 'number' ? String(orderId) : orderId }),
    };
  };
  if (products === undefined) {
    if (orderAmount === undefined)
      return {
        ok: false,
        errors: [{ path: 'properties.revenue', message: 'a purchase needs revenue, total or amount' }],
      };
    return {
      ok: true,
      mapped: [
        one((o) => {
          o.amount = amountField;
          o.quantity = 'properties.quantity';
          return {
            target: mapTarget(p, o, str(p.affiliation)),
            tags: mapTags(p, 'properties', p.tags, o),
            amount: orderAmount,
            ...money(o),
            ...(p.quantity !== undefined && { quantity: p.quantity }),
          };
        }),
      ],
    };
  }
  const lines = products.map((raw) => {
    const line = isObject(raw) ? raw : {};
    return { line, quantity: line.quantity ?? 1, price: num(line.price) };
  });
  const everyPrice = lines.every((l) => l.price !== undefined);
  if (!everyPrice && orderAmount === undefined) {
    return {
      ok: false,
      errors: [{ path: 'properties.revenue', message: 'an order whose products lack a price needs revenue or total' }],
    };
  }
  const units = lines.reduce((s, l) => s + (num(l.quantity) ?? 1), 0);
  const mapped = lines.map(({ line, quantity, price }, j) =>
    one((o) => {
      const at = `properties.products.${j}`;
      const target = mapTarget(line, o);
      if (o.target === 'properties.product_id') o.target = `${at}.product_id`;
      else if (o.target === 'properties.target') o.target = `${at}.target`;
      o.quantity = `${at}.quantity`;
      o.amount = everyPrice ? `${at}.price` : amountField;
      const amount = everyPrice ? price! * (num(quantity) ?? 1) : (orderAmount! * (num(quantity) ?? 1)) / units;
      return { target, tags: mapTags(line, at, p.tags, o), amount: round(amount), ...money(o), quantity };
    }, `:${j}`),
  );
  return { ok: true, mapped };
}

/** Turns native-path errors into the Segment field they came from. */
function translate(errors: FieldError[], origin: Record<string, string>): FieldError[] {
  return errors.map((e) => {
    if (origin[e.path] !== undefined) return { ...e, path: origin[e.path]! };
    const head = Object.keys(origin)
      .filter((k) => e.path.startsWith(`${k}.`))
      .sort((a, b) => b.length - a.length)[0];
    return head === undefined ? e : { ...e, path: origin[head]! + e.path.slice(head.length) };
  });
}

function normalizeMapped<T>(
  mapped: Mapped[],
  normalize: (input: unknown, o: NormalizeOptions) => Normalized<T>,
  options: NormalizeOptions,
): Normalized<T[]> {
  const out: T[] = [];
  const errors: FieldError[] = [];
  for (const m of mapped) {
    const r = normalize(m.native, options);
    if (r.ok) out.push(r.value);
    else errors.push(...translate(r.errors, m.origin));
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, value: out };
}

/** Segment `track` → the events it means (all or nothing: an order is never half-accepted). */
export function mapSegmentTrack(
  input: unknown,
  options: NormalizeOptions,
  sharedContext?: unknown,
): SegmentMapped<ProfileEvent> {
  const parsed = segmentTrackSchema.safeParse(input);
  if (!parsed.success) return { ok: false, errors: fieldErrors(parsed.error.issues) };
  const r = mapTrack(parsed.data, sharedContext);
  if ('ignored' in r) return ignore(r.ignored);
  if (!r.ok) return r;
  return normalizeMapped(r.mapped, normalizeEvent, options);
}

/** Segment traits → ours: `address.{city,country,state}` flattened, `birthday` → `birthYear`. */
function mapTraits(traits: Record<string, unknown>): Record<string, unknown> {
  const { address, birthday, ...rest } = traits;
  const out: Record<string, unknown> = {};
  if (isObject(address)) {
    if (address.city !== undefined) out.city = address.city;
    if (address.country !== undefined) out.country = address.country;
    if (address.state !== undefined) out.region = address.state;
  } else if (address !== undefined) out.address = address;
  if (typeof birthday === 'string' && !Number.isNaN(Date.parse(birthday)))
    out.birthYear = new Date(birthday).getUTCFullYear();
  else if (birthday !== undefined) out.birthday = birthday;
  return { ...out, ...rest };
}

/**
 * Segment `identify` → an identify message (see normalizeIdentify for placeholders). Without a
 * userId it is accepted and ignored: browser SDKs identify anonymous visitors routinely, and
 * traits are kept for known users only.
 */
export function mapSegmentIdentify(input: unknown, options: NormalizeOptions): SegmentMapped<IdentifyMessage> {
  const parsed = segmentIdentifySchema.safeParse(input);
  if (!parsed.success) return { ok: false, errors: fieldErrors(parsed.error.issues) };
  const item = parsed.data;
  if (item.userId === undefined)
    return ignore(
      'an identify without userId: traits are kept for known users only (send them again once the user is known)',
    );
  const eventId = eventIdFromMessageId(item.messageId);
  const native = {
    userId: item.userId,
    traits: mapTraits(item.traits ?? {}),
    ...(item.anonymousId !== undefined && { anonymousId: item.anonymousId }),
    ...(item.timestamp !== undefined && { occurredAt: item.timestamp }),
    ...(eventId !== undefined && { eventId }),
  };
  return normalizeMapped(
    [{ native, origin: { eventId: 'messageId', occurredAt: 'timestamp' } }],
    normalizeIdentify,
    options,
  );
}

/** Segment `alias` → an alias message. */
export function mapSegmentAlias(input: unknown, options: NormalizeOptions): Normalized<AliasMessage[]> {
  const parsed = segmentAliasSchema.safeParse(input);
  if (!parsed.success) return { ok: false, errors: fieldErrors(parsed.error.issues) };
  const item = parsed.data;
  const eventId = eventIdFromMessageId(item.messageId);
  const native = {
    userId: item.userId,
    previousId: item.previousId,
    ...(item.timestamp !== undefined && { occurredAt: item.timestamp }),
    ...(eventId !== undefined && { eventId }),
  };
  return normalizeMapped(
    [{ native, origin: { eventId: 'messageId', occurredAt: 'timestamp' } }],
    normalizeAlias,
    options,
  );
}

/**
 * Segment `page` or `screen` → a click on what was viewed, when `properties` name it
 * (`product_id`, `content_id` or `target`); tags come from `properties.tags` only, since a page's
 * `category` is the page's, not the product's. Any other view is accepted and ignored.
 */
export function mapSegmentPage(
  kind: 'page' | 'screen',
  input: unknown,
  options: NormalizeOptions,
  sharedContext?: unknown,
): SegmentMapped<ProfileEvent> {
  const parsed = segmentPageSchema.safeParse(input);
  if (!parsed.success) return { ok: false, errors: fieldErrors(parsed.error.issues) };
  const item = parsed.data;
  const p = item.properties ?? {};
  if (p.target === undefined && str(p.product_id) === undefined && str(p.content_id) === undefined) {
    return ignore(`a ${kind} without properties.product_id, content_id or target names nothing to score`);
  }
  const origin: Record<string, string> = {};
  const native: Record<string, unknown> = {
    ...base(item, 'click', sharedContext, origin),
    target: mapTarget(p, origin),
    tags: mapTags({}, 'properties', p.tags, origin),
  };
  origin.type = 'type';
  const eventId = eventIdFromMessageId(item.messageId);
  if (eventId !== undefined) native.eventId = eventId;
  return normalizeMapped([{ native, origin }], normalizeEvent, options);
}

/** Segment `group` → nothing (accepted, ignored): profiles are people, not accounts. */
export function mapSegmentGroup(input: unknown): SegmentMapped<never> {
  const parsed = segmentGroupSchema.safeParse(input);
  if (!parsed.success) return { ok: false, errors: fieldErrors(parsed.error.issues) };
  return ignore('group calls are not used: profiles are people, not accounts');
}

/** The Segment call types ingest accepts, alone (`/v1/<type>`) or in a batch. */
export const SEGMENT_CALL_TYPES = ['track', 'identify', 'alias', 'page', 'screen', 'group'] as const;

/** One item of a Segment `batch`, by its `type`; the batch's top-level `context` is merged under the item's. */
export function mapSegmentItem(
  input: unknown,
  options: NormalizeOptions,
  sharedContext?: unknown,
): SegmentMapped<TopicMessage> {
  const type = isObject(input) ? input.type : undefined;
  if (type === 'track') return mapSegmentTrack(input, options, sharedContext);
  if (type === 'identify') return mapSegmentIdentify(input, options);
  if (type === 'alias') return mapSegmentAlias(input, options);
  if (type === 'page' || type === 'screen') return mapSegmentPage(type, input, options, sharedContext);
  if (type === 'group') return mapSegmentGroup(input);
  return {
    ok: false,
    errors: [
      {
        path: 'type',
        message: `${typeof type === 'string' ? `"${type}" calls are` : 'a call without type is'} not supported; send one of ${SEGMENT_CALL_TYPES.join(', ')}`,
      },
    ],
  };
}
