import { normalizeEvent } from '../dialects';
import type { FastifyInstance } from 'fastify';
import { MAX_BATCH, sortItems } from '../accept';
import type { Publisher } from '../publisher';
import { eventsBodySchema } from '../schemas';
import { isObject } from '../json';
import { malformed, publishAndRespond } from './respond';
import { trackingRoute } from './route-options';

/**
 * `POST /v1/events` (docs/events.md §3.3): one native event, or `{ events: [...] }` with at most 500. Each
 * event is validated on its own with the native schema; the valid ones are published, the
 * invalid ones listed by index.
 */
export function registerEventRoutes(app: FastifyInstance, deps: { publisher: Publisher }): void {
  app.post(
    '/v1/events',
    trackingRoute('trackEvents', ['native'], 'Track one event or a batch of up to 500', eventsBodySchema),
    async (request, reply) => {
      const body = request.body;
      if (!isObject(body)) return malformed(reply, 'the body must be an event object or { "events": [...] }');
      let items: unknown[] = [body];
      if ('events' in body) {
        if (!Array.isArray(body.events)) return malformed(reply, 'events must be an array');
        items = body.events;
        if (items.length === 0) return malformed(reply, 'events is empty');
        if (items.length > MAX_BATCH)
          return malformed(reply, `at most ${MAX_BATCH} events per request, got ${items.length}`);
      }
      const options = { source: request.source, now: Date.now() };
      return publishAndRespond(
        reply,
        deps.publisher,
        sortItems(items, (item) => wrap(normalizeEvent(item, options))),
      );
    },
  );
}

/** A single-message result as the list `sortItems` expects. */
export function wrap<T>(r: { ok: true; value: T } | { ok: false; errors: { path: string; message: string }[] }) {
  return r.ok ? { ok: true as const, value: [r.value] } : r;
}
