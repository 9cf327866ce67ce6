/**
 * The lists several places branch on — event types with their roles, social actions, transition
 * kinds — are exported once (packages/events). This runs every member through every place that
 * handles it, so a new member that one of them forgets fails here, by name.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ruleSchema } from '@pstream/audiences';
import {
  EVENT_ROLES,
  EVENT_TYPES,
  lifecycleMessageSchema,
  SOCIAL_ACTIONS,
  TRANSITION_KINDS,
  type EventType,
  type ProfileEvent,
} from '@pstream/events';
import { mapSegmentTrack, normalizeEvent, SEGMENT_EVENT_NAMES } from '@pstream/ingest/dialects';
import { createConverter, foldEvents, SOCIAL_TYPES, SOCIAL_TYPES_SQL } from '@pstream/profile-store';
import { applyEvent, DEFAULT_WEIGHTS, emptyModel, VISIT_ACTIONS, type ScoringParams } from '@pstream/scoring';
import { testScoringParams } from '@pstream/scoring/testing';

const NOW = Date.parse('2026-05-01T12:00:00.000Z');
const options = { source: 'test', now: NOW };
const params: ScoringParams = testScoringParams();

/** The fields a type requires beyond the common ones (docs/events.md §3.1). */
function extra(type: EventType): Record<string, unknown> {
  const role = EVENT_ROLES[type];
  if (role === 'dwell') return { dwellMs: 20_000 };
  if (role === 'purchase') return { amount: 10, currency: 'CNY', orderId: 'o-1' };
  return {};
}

/** A valid native event of `type`, normalized as ingest would. */
function event(type: EventType, eventId = `e-${type}`): ProfileEvent {
  const input = {
    eventId,
    type,
    userId: 'u-1',
    occurredAt: new Date(NOW - 60_000).toISOString(),
    target: { type: 'product', id: 'p-1' },
    tags: ['category:dress'],
    ...extra(type),
  };
  const normalized = normalizeEvent(input, options);
  if (!normalized.ok) throw new Error(`${type}: ${JSON.stringify(normalized.errors)}`);
  return normalized.value;
}

describe.each(EVENT_TYPES)('event type %s', (type) => {
  it('is accepted by the native envelope', () => {
    expect(event(type).type).toBe(type);
  });

  it('is accepted by name in a Segment track', () => {
    const mapped = mapSegmentTrack(
      {
        type: 'track',
        event: type,
        userId: 'u-1',
        messageId: `m-${type}`,
        properties: { product_id: 'p-1', ...extra(type) },
      },
      options,
    );
    expect(mapped).toMatchObject({ ok: true });
  });

  it('moves scores by a finite amount, after a click and on its own', () => {
    for (const opened of [false, true]) {
      const model = emptyModel();
      if (opened)
        applyEvent(
          model,
          {
            type: 'click',
            target: { type: 'product', id: 'p-1' },
            tags: ['category:dress'],
            occurredMs: NOW - 120_000,
          },
          params,
        );
      if (type === 'unfollow')
        applyEvent(
          model,
          { type: 'follow', target: { type: 'product', id: 'p-1' }, tags: [], occurredMs: NOW - 90_000 },
          params,
        );
      const e = event(type);
      const changes = applyEvent(
        model,
        {
          type,
          target: e.target,
          tags: e.tags,
          occurredMs: NOW - 60_000,
          ...(e.dwellMs !== undefined && { dwellMs: e.dwellMs }),
        },
        params,
      );
      for (const [tag, delta] of changes) expect([tag, Number.isFinite(delta)]).toEqual([tag, true]);
      for (const [tag, score] of model.interests) expect([tag, Number.isFinite(score)]).toEqual([tag, true]);
    }
  });

  it('is folded into the facts: counted, and social exactly when its role says so', () => {
    const rows = foldEvents([{ key: 'u-1', event: event(type) }], createConverter('CNY', new Map()));
    expect(rows.counts).toEqual([{ key: 'u-1', type, n: 1 }]);
    expect(rows.people[0]!.social.length).toBe(EVENT_ROLES[type] === 'social' ? 1 : 0);
  });

  it('can be named by an audience rule', () => {
    expect(ruleSchema.safeParse({ did: { type, atLeast: 1, inLastDays: 30 } }).success).toBe(true);
  });
});

describe('the derived lists', () => {
  it('social actions: the facts, the SQL and the visit counters are the roles marked social', () => {
    const social = EVENT_TYPES.filter((t) => EVENT_ROLES[t] === 'social');
    expect([...SOCIAL_ACTIONS]).toEqual(social);
    expect([...SOCIAL_TYPES]).toEqual(social);
    expect([...VISIT_ACTIONS]).toEqual(social);
    expect(SOCIAL_TYPES_SQL).toBe(social.map((t) => `'${t}'`).join(', '));
    for (const t of SOCIAL_ACTIONS) expect([t, typeof DEFAULT_WEIGHTS[t]]).toEqual([t, 'number']);
  });

  it('Segment names map onto event types only', () => {
    for (const [name, type] of Object.entries(SEGMENT_EVENT_NAMES))
      expect([name, EVENT_TYPES.includes(type)]).toEqual([name, true]);
  });

  it('transition kinds: the lifecycle message and the CHECK of migration 004 list the same', () => {
    const migration = readFileSync(
      join(__dirname, '../packages/profile-store/migrations/004_orders_and_tier_changes.sql'),
      'utf8',
    );
    const check = /CHECK \(kind IN \(([^)]*)\)\)/.exec(migration)?.[1];
    expect(check?.split(',').map((s) => s.trim().replace(/'/g, ''))).toEqual([...TRANSITION_KINDS]);
    expect(lifecycleMessageSchema.shape.kind.options).toEqual([...TRANSITION_KINDS]);
  });
});
