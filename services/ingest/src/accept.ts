import { idsNamedBy, isPlaceholderId, type TopicMessage } from '@pstream/events';
import type { FieldError } from '@pstream/platform';
import type { Normalized } from './dialects';
import type { Record } from './publisher';

/** At most this many events (or Segment calls) in one request (docs/events.md §3.3). */
export const MAX_BATCH = 500;
/** One event at most 32 KB (docs/events.md §3.3), measured on the normalized message as it goes to Kafka. */
export const MAX_EVENT_BYTES = 32 * 1024;
export const EVENT_TOO_LARGE = `is larger than ${MAX_EVENT_BYTES / 1024} KB`;

export type Rejection = { index: number; errors: FieldError[] };
/** An accepted item that became no message (a Segment `group`, a page naming nothing, …), and why. */
export type Ignored = { index: number; reason: string };

/**
 * How a request's items fared: the records to publish, every refused item by index, and the accepted ones that became
 * nothing.
 */
export type Sorted = { accepted: number; rejected: Rejection[]; records: Record[]; ignored: Ignored[] };

/**
 * Maps every item on its own (pure): an item becomes zero or more messages (a Segment order
 * becomes one purchase per product) or a list of errors. An item is accepted whole or not at all.
 * The size limit is checked on the serialized message, which is what Kafka stores, and the
 * serialization is reused for the send.
 */
export function sortItems(
  items: readonly unknown[],
  map: (item: unknown) => Normalized<TopicMessage[]> & { ignored?: string },
): Sorted {
  const records: Record[] = [];
  const rejected: Rejection[] = [];
  const ignored: Ignored[] = [];
  let accepted = 0;
  items.forEach((item, index) => {
    const result = map(item);
    if (!result.ok) {
      rejected.push({ index, errors: result.errors });
      return;
    }
    if (result.ignored !== undefined) ignored.push({ index, reason: result.ignored });
    const own: Record[] = [];
    for (const message of result.value) {
      const value = JSON.stringify(message);
      // Byte length only matters when the UTF-16 length could exceed the limit (≤3 bytes per unit).
      if (value.length * 3 > MAX_EVENT_BYTES && Buffer.byteLength(value) > MAX_EVENT_BYTES) {
        rejected.push({ index, errors: [{ path: '', message: EVENT_TOO_LARGE }] });
        return;
      }
      own.push({ key: message.profileKey, value, names: realIds(message) });
    }
    records.push(...own);
    accepted += 1;
  });
  return { accepted, rejected, records, ignored };
}

/** Every real id a message names (`idsNamedBy` without placeholders), for sealing under all their keys. */
function realIds(m: TopicMessage): string[] {
  return idsNamedBy(m).filter((id) => !isPlaceholderId(id));
}

/** True when every refusal was the size limit: the request as a whole is "too large" (413). */
export function onlyTooLarge(rejected: readonly Rejection[]): boolean {
  return rejected.length > 0 && rejected.every((r) => r.errors.every((e) => e.message === EVENT_TOO_LARGE));
}
