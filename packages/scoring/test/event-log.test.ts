import fc from 'fast-check';
import { EventLog, type TimedEvent } from '../src';

/** Events with few times (so ties by seq happen), some with dwell, 0–3 tags. */
const eventsArb = fc.array(
  fc.record(
    {
      t: fc.integer({ min: 0, max: 20 }),
      type: fc.constantFrom('click' as const, 'dwell' as const, 'like' as const),
      key: fc.constantFrom('product:p-1', 'shop:s-1'),
      tags: fc.subarray(['category:dress', 'brand:acme', 'style:casual']),
      dwellMs: fc.integer({ min: 0, max: 90_000 }),
    },
    { requiredKeys: ['t', 'type', 'key', 'tags'] },
  ),
  { maxLength: 40 },
);

/** The test's own order (not the log's), so the two are checked against each other. */
const before = (a: TimedEvent, b: TimedEvent) => a.t < b.t || (a.t === b.t && a.seq < b.seq);

describe('EventLog', () => {
  it('holds what a sorted array of the events holds, through inserts in any order and drops from the front', () => {
    fc.assert(
      fc.property(eventsArb, fc.array(fc.nat(10), { maxLength: 5 }), (events, drops) => {
        const log = new EventLog();
        const sorted: TimedEvent[] = [];
        const insert = (timed: TimedEvent) => {
          log.insert(timed);
          let i = 0;
          while (i < sorted.length && before(sorted[i]!, timed)) i++;
          sorted.splice(i, 0, { ...timed, tags: [...timed.tags] });
        };
        events.forEach((e, seq) => insert({ ...e, seq }));
        // Drops (some past the end) with inserts after each, so a drop that left the columns out of step shows.
        drops.forEach((n, d) => {
          log.dropFirst(n);
          sorted.splice(0, n);
          const late = events[d];
          if (late) insert({ ...late, seq: events.length + d });
        });
        expect(log).toHaveLength(sorted.length);
        expect([...log]).toEqual(sorted);
        sorted.forEach((e, i) => {
          expect(log.t(i)).toBe(e.t);
          expect(log.seq(i)).toBe(e.seq);
        });
        const walked: TimedEvent[] = [];
        log.forEachField((t, seq, type, key, dwellMs, tags, from, count) =>
          walked.push({
            t,
            seq,
            type,
            key,
            tags: tags.slice(from, from + count),
            ...(dwellMs !== undefined && { dwellMs }),
          }),
        );
        expect(walked).toEqual(sorted);
        expect(EventLog.of(sorted)).toEqual(log);
      }),
    );
  });

  it('compares by its events: logs with different events are not equal', () => {
    const a = EventLog.of([{ t: 1, seq: 0, type: 'click', key: 'product:p-1', tags: ['brand:acme'] }]);
    expect(a).toEqual(EventLog.of([{ t: 1, seq: 0, type: 'click', key: 'product:p-1', tags: ['brand:acme'] }]));
    expect(a).not.toEqual(EventLog.of([{ t: 1, seq: 0, type: 'click', key: 'product:p-1', tags: ['style:casual'] }]));
    expect(a).not.toEqual(new EventLog());
  });
});
