import type { FieldError } from '@pstream/platform';
import { z } from 'zod';

const isoTime = z.iso.datetime({ offset: true });
const parse = (v: unknown): number | undefined =>
  typeof v === 'string' && isoTime.safeParse(v).success ? Date.parse(v) : undefined;

export type Skewed = { ok: true; value: unknown } | { ok: false; errors: FieldError[] };

/**
 * Corrects a Segment/RudderStack call's time for the device's clock, as Segment does:
 * `timestamp = receivedAt - (sentAt - timestamp)`. `sentAt` is the device's clock when the call
 * was sent (the item's own, else the batch's), so a phone whose clock is an hour off still gets
 * its events placed right; queued events keep how long ago they happened. RudderStack's SDKs
 * send the device time as `originalTimestamp`, read when `timestamp` is absent. Without a
 * `sentAt` the time is taken as it is. Pure; returns a corrected shallow copy, or an error
 * naming a `sentAt` that is not an ISO-8601 time with a zone.
 */
export function correctSkew(item: unknown, batchSentAt: unknown, receivedAt: number): Skewed {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) return { ok: true, value: item };
  const call = item as Record<string, unknown>;
  const ownSentAt = call.sentAt !== undefined && call.sentAt !== null;
  const sentAtRaw = ownSentAt ? call.sentAt : batchSentAt;
  const time = call.timestamp ?? call.originalTimestamp;
  const sentAt = parse(sentAtRaw);
  if (sentAtRaw !== undefined && sentAtRaw !== null && sentAt === undefined) {
    return { ok: false, errors: [{ path: 'sentAt', message: 'must be an ISO-8601 date-time with a time zone' }] };
  }
  const at = parse(time);
  if (at === undefined || sentAt === undefined)
    return { ok: true, value: time === call.timestamp ? call : { ...call, timestamp: time } };
  return { ok: true, value: { ...call, timestamp: new Date(receivedAt - (sentAt - at)).toISOString() } };
}
