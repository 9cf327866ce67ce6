import { normalizeEvent, type FieldError, type ProfileEvent } from '@pstream/events';
import type { FastifyInstance } from 'fastify';
import type { Publisher } from '../publisher';

/** At most this many events in one `{ events: [...] }` body (SPEC §3.3). */
export const MAX_BATCH = 500;

type Rejection = { index: number; errors: FieldError[] };

/**
 * `POST /v1/events`: one event, or `{ events: [...] }`. Each event is validated on its own; the
 * valid ones are published and acknowledged by Kafka before the 202, the invalid ones are listed
 * by index with every problem found. Nothing accepted → 400.
 */
export function registerEventRoutes(app: FastifyInstance, deps: { publisher: Publisher }): void {
  app.post('/v1/events', { schema: { tags: ['tracking'], security: [{ basicAuth: [] }, { writeKey: [] }] } }, async (request, reply) => {
    const body = request.body as unknown;
    const batch = isBatch(body);
    if (batch && !Array.isArray(body.events)) {
      return reply.code(400).send({ error: 'Bad Request', message: 'events must be an array' });
    }
    const items: unknown[] = batch ? (body.events as unknown[]) : [body];
    if (items.length === 0) return reply.code(400).send({ error: 'Bad Request', message: 'events is empty' });
    if (items.length > MAX_BATCH) {
      return reply.code(400).send({ error: 'Bad Request', message: `at most ${MAX_BATCH} events per request, got ${items.length}` });
    }
    const now = Date.now();
    const accepted: ProfileEvent[] = [];
    const rejected: Rejection[] = [];
    items.forEach((item, index) => {
      const result = normalizeEvent(item, { source: request.source, now });
      if (result.ok) accepted.push(result.value);
      else rejected.push({ index, errors: result.errors });
    });
    if (accepted.length === 0) {
      return reply.code(400).send({ error: 'Bad Request', message: 'no event was accepted', accepted: 0, rejected });
    }
    await deps.publisher.publish(accepted);
    return reply.code(202).send({ accepted: accepted.length, rejected });
  });
}

function isBatch(body: unknown): body is { events: unknown } {
  return typeof body === 'object' && body !== null && !Array.isArray(body) && 'events' in body;
}
