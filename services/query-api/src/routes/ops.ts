import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import { errorResponse, sendError } from '@pstream/http';
import type { FastifyInstance, preHandlerHookHandler } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { GROUP_STATUSES, PARTITION_STATUSES } from '../lag/burrow';
import type { LagSampler } from '../lag/sampler';
import { QueryErrors } from '../errors';
import { assetHeaders, withPageHeaders } from './page-headers';

const offset = z.number().int();
const lagBody = z.object({
  groups: z.array(
    z.object({
      group: z.string(),
      topic: z.string(),
      status: z
        .enum(GROUP_STATUSES)
        .describe('ERR when any partition is STALL, STOP or REWIND; else the worst of OK and WARN'),
      lag: z.number().int().describe('sum of the partitions’ lag'),
      partitions: z.array(
        z.object({
          partition: z.number().int(),
          committed: offset
            .nullable()
            .describe('the group’s committed offset; null when it has none on this partition'),
          end: offset.describe('log end offset'),
          lag: z.number().int().nullable().describe('end − committed; null without a committed offset'),
          status: z.enum(PARTITION_STATUSES).describe('Burrow’s rules over the window of commits'),
        }),
      ),
    }),
  ),
  at: z.string().describe('when the sample was taken, ISO-8601 UTC'),
});
const point = z.object({
  at: z.number().describe('ms since the epoch'),
  lag: z.number(),
  eventsPerSec: z.number(),
  stalled: z.number().int(),
});
const historyBody = z.object({
  groups: z.array(z.object({ group: z.string(), topic: z.string(), points: z.array(point) })),
  dlq: z.array(z.object({ at: z.number(), perSec: z.number() })),
  at: z.string(),
});

const errors = {
  401: errorResponse('Missing or unknown bearer token (QRY_UNAUTHORIZED)', { 'WWW-Authenticate': 'Bearer' }),
  403: errorResponse('The token lacks ops:read (QRY_FORBIDDEN)'),
  503: errorResponse('No lag sample yet, or lag sampling is not running (QRY_LAG_UNAVAILABLE)'),
};

/**
 * `GET /ops/lag` (docs/api.md §5.8) and `GET /ops/lag/history` from the lag sampler's memory, and the
 * `/ops` page (static HTML and script, uPlot served from its npm package; no CDN).
 */
export async function registerOpsPage(
  app: FastifyInstance,
  deps: { lag: LagSampler | undefined; guard: preHandlerHookHandler },
): Promise<void> {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const common = { preHandler: deps.guard, schema: { tags: ['ops'], security: [{ bearerAuth: [] }] } };
  typed.get(
    '/ops/lag',
    {
      ...common,
      schema: {
        ...common.schema,
        summary: 'Consumer lag per group, topic and partition, with Burrow’s status',
        operationId: 'getLag',
        response: { 200: lagBody, ...errors },
      },
    },
    async (_request, reply) => {
      const snapshot = deps.lag?.latest();
      if (!snapshot)
        return sendError(
          reply,
          503,
          QueryErrors.LAG_UNAVAILABLE,
          deps.lag ? 'no lag sample taken yet; retry shortly' : 'lag sampling is not running',
        );
      return snapshot;
    },
  );
  typed.get(
    '/ops/lag/history',
    {
      ...common,
      schema: {
        ...common.schema,
        summary: 'The last hour of lag, events/s and stalled partitions per group, and the DLQ rate',
        operationId: 'getLagHistory',
        response: { 200: historyBody, ...errors },
      },
    },
    async (_request, reply) => {
      if (!deps.lag) return sendError(reply, 503, QueryErrors.LAG_UNAVAILABLE, 'lag sampling is not running');
      return deps.lag.recent();
    },
  );
  await app.register(fastifyStatic, {
    root: join(__dirname, '..', '..', 'public'),
    prefix: '/ops/assets/',
    setHeaders: assetHeaders,
  });
  await app.register(fastifyStatic, {
    root: join(require.resolve('uplot'), '..'),
    prefix: '/ops/assets/uplot/',
    decorateReply: false,
    setHeaders: assetHeaders,
  });
  app.get('/ops', { schema: { hide: true } }, async (_request, reply) => withPageHeaders(reply).sendFile('ops.html'));
}
