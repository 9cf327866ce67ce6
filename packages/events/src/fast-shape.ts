import { CHANNELS, EVENT_TYPES, TARGET_TYPES } from './fields';

/*
 * The pieces both hand-compiled checks share — ingest's of the native event
 * (services/ingest/src/dialects/fast-native.ts) and the consumers' of the topic message
 * (fast-message.ts): each rule is the zod schema's own rule, never looser, and answers `undefined`
 * for anything it does not handle, so the caller asks zod.
 */

export const eventTypes: ReadonlySet<unknown> = new Set(EVENT_TYPES);
export const targetTypes: ReadonlySet<unknown> = new Set(TARGET_TYPES);
const channels: ReadonlySet<unknown> = new Set(CHANNELS);

/** An object as JSON.parse makes it (no class, no null prototype). */
export const isPlain = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;
export const isString = (v: unknown): v is string => typeof v === 'string';
/** A string of 1..max UTF-16 units (zod's min(1).max(max)). */
export const text = (v: unknown, max: number): v is string => typeof v === 'string' && v.length >= 1 && v.length <= max;

/**
 * A copy of a JSON object's own keys (all but `skip`) into `into`, or undefined for one this does not
 * copy (a `__proto__` key: an assignment would set the prototype; zod's handling of it is left to zod).
 */
export function copyKeys(o: Record<string, unknown>, skip?: ReadonlySet<string>, into: Record<string, unknown> = {}) {
  for (const k of Object.keys(o)) {
    if (k === '__proto__') return undefined;
    if (skip === undefined || !skip.has(k)) into[k] = o[k];
  }
  return into;
}

const GEO_KEYS: ReadonlySet<string> = new Set(['country', 'region', 'city']);
const CONTEXT_KEYS: ReadonlySet<string> = new Set(['channel', 'device', 'geo']);

/** `context` as zod's looseObject gives it: channel, device, geo first (when present), then the rest in order. */
export function fastContext(c: unknown): Record<string, unknown> | undefined {
  if (!isPlain(c)) return undefined;
  const out: Record<string, unknown> = {};
  if ('channel' in c) {
    if (!channels.has(c.channel)) return undefined;
    out.channel = c.channel;
  }
  if ('device' in c) {
    const device = c.device;
    if (!isPlain(device)) return undefined;
    const d = copyKeys(device);
    if (d === undefined) return undefined;
    out.device = d;
  }
  if ('geo' in c) {
    const geo = c.geo;
    if (!isPlain(geo)) return undefined;
    const g: Record<string, unknown> = {};
    for (const k of ['country', 'region', 'city'] as const) {
      if (!(k in geo)) continue;
      const v = geo[k];
      if (!isString(v) || v.length > 64) return undefined;
      g[k] = v;
    }
    if (copyKeys(geo, GEO_KEYS, g) === undefined) return undefined;
    out.geo = g;
  }
  return copyKeys(c, CONTEXT_KEYS, out);
}
