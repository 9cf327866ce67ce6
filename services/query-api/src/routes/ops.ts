import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, preHandlerHookHandler } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { GROUP_STATUSES, PARTITION_STATUSES } from '../lag/burrow';
import type { LagSampler } from '../lag/sampler';

const errorBody = z.object({ error: z.string(), message: z.string() });
const offset = z.number().int();
const lagBody = z.object({
  groups: z.array(
    z.object({
      group: z.string(),
      topic: z.string(),
      status: z.enum(GROUP_STATUSES).describe('ERR when any partition is STALL, STOP or REWIND; else the worst of OK and WARN'),
      lag: z.number().int().describe('sum of the partitions’ lag'),
      partitions: z.array(
        z.object({
          partition: z.number().int(),
          committed: offset.nullable().describe('the group’s committed offset; null when it has none on this partition'),
          end: offset.describe('log end offset'),
          lag: z.number().int().nullable().describe('end − committed; null without a committed offset'),
          status: z.enum(PARTITION_STATUSES).describe('Burrow’s rules over the window of commits'),
        }),
      ),
    }),
  ),
  at: z.string().describe('when the sample was taken, ISO-8601 UTC'),
});
const point = z.object({ at: z.number().describe('ms since the epoch'), lag: z.number(), eventsPerSec: z.number(), stalled: z.number().int() });
const historyBody = z.object({
  groups: z.array(z.object({ group: z.string(), topic: z.string(), points: z.array(point) })),
  dlq: z.array(z.object({ at: z.number(), perSec: z.number() })),
  at: z.string(),
});

const unavailable = (what: string) => ({ error: 'Service Unavailable', message: what });

/**
 * `GET /ops/lag` (SPEC §5.8) and `GET /ops/lag/history` from the lag sampler's memory, and the
 * `/ops` page (static HTML and script, uPlot served from its npm package; no CDN).
 */
export async function registerOpsPage(app: FastifyInstance, deps: { lag: LagSampler | undefined; guard: preHandlerHookHandler }): Promise<void> {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const common = { preHandler: deps.guard, schema: { tags: ['ops'], security: [{ bearerAuth: [] }] } };
  typed.get(
    '/ops/lag',
    { ...common, schema: { ...common.schema, summary: 'Consumer lag per group, topic and partition, with Burrow’s status', response: { 200: lagBody, 401: errorBody, 403: errorBody, 503: errorBody } } },
    async (_request, reply) => {
      const snapshot = deps.lag?.latest();
      if (!snapshot) return reply.code(503).send(unavailable(deps.lag ? 'no lag sample taken yet; retry shortly' : 'lag sampling is not running'));
      return snapshot;
    },
  );
  typed.get(
    '/ops/lag/history',
    { ...common, schema: { ...common.schema, summary: 'The last hour of lag, events/s and stalled partitions per group, and the DLQ rate', response: { 200: historyBody, 401: errorBody, 403: errorBody, 503: errorBody } } },
    async (_request, reply) => {
      if (!deps.lag) return reply.code(503).send(unavailable('lag sampling is not running'));
      return deps.lag.recent();
    },
  );
  await app.register(fastifyStatic, { root: join(__dirname, '..', '..', 'public'), prefix: '/ops/assets/' });
  await app.register(fastifyStatic, { root: join(require.resolve('uplot'), '..'), prefix: '/ops/assets/uplot/', decorateReply: false });
  app.get('/ops', { schema: { hide: true } }, async (_request, reply) => reply.sendFile('ops.html'));
}
