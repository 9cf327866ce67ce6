import { randomUUID } from 'node:crypto';
import {
  explanationNodeSchema,
  MAX_RULE_DID_DAYS,
  ruleDidDays,
  ruleSchema,
  type AudienceEngine,
  type Rule,
} from '@pstream/audiences';
import { errorResponse, sendError } from '@pstream/http';
import { isStatementTimeout } from '@pstream/platform';
import type { AudienceStore } from '@pstream/profile-store';
import type { FastifyInstance, FastifyReply, preHandlerHookHandler } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { QueryErrors } from '../errors';
import { cursorParam, decodeCursor, encodeCursor, profileIdParams } from './params';

const EXAMPLE_RULE = {
  all: [
    { interest: { tag: 'category:dress', minValue: 5 } },
    { trait: { name: 'city', op: 'eq', value: 'Hangzhou' } },
    { did: { type: 'purchase', atLeast: 2, inLastDays: 30 } },
    { not: { stage: { in: ['churned'] } } },
  ],
};
const SAMPLE = 20;
const time = z.string().describe('ISO-8601 UTC');

export const ruleRef = ruleSchema;
export const previewRequestSchema = z
  .object({ rule: ruleSchema })
  .describe('A rule to evaluate now')
  .meta({ examples: [{ rule: EXAMPLE_RULE }] });
export const previewSchema = z
  .object({
    count: z.number().int().describe('people the rule holds for at computedAt'),
    sample: z.array(z.string()).describe(`at most ${SAMPLE} of their profile ids`),
    computedAt: time,
  })
  .describe('How many people a rule holds for now, and a sample')
  .meta({ examples: [{ count: 1834, sample: ['u-1007', 'u-1020'], computedAt: '2026-11-30T04:00:00.000Z' }] });
export const audienceRequestSchema = z
  .object({ name: z.string().min(1).max(200), rule: ruleSchema })
  .describe('An audience to save')
  .meta({ examples: [{ name: 'Hangzhou dress buyers', rule: EXAMPLE_RULE }] });
export const audienceSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    rule: ruleSchema,
    count: z.number().int().describe('members as of the last refresh (creation, then every sweep)'),
    createdAt: time,
  })
  .describe('A saved audience')
  .meta({
    examples: [
      {
        id: 'aud-6f1c0e0a-0d7e-4a57-9a8e-2b8c4f0e9d11',
        name: 'Hangzhou dress buyers',
        rule: EXAMPLE_RULE,
        count: 1834,
        createdAt: '2026-11-30T04:00:00.000Z',
      },
    ],
  });
export const audienceListSchema = z
  .object({ audiences: z.array(audienceSchema).describe('oldest first') })
  .describe('Every saved audience');
export const membersSchema = z
  .object({
    members: z.array(z.string()).describe('profile ids, in id order'),
    nextCursor: z.string().nullable().describe('pass as cursor for the next page; null on the last page'),
  })
  .describe('One page of an audience’s members')
  .meta({ examples: [{ members: ['u-1007', 'u-1020'], nextCursor: 'dS0xMDIw' }] });

/** An audience id as the API gives them out (`aud-<uuid>`), or any id of the same alphabet. */
export const audienceIdSchema = z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'must be an audience id');
export const explainRequestSchema = z
  .object({
    rule: ruleSchema.optional().describe('the rule to explain; or give audienceId'),
    audienceId: audienceIdSchema.optional().describe('a saved audience whose rule to explain; or give rule'),
    id: profileIdParams.shape.id,
  })
  .refine((b) => (b.rule === undefined) !== (b.audienceId === undefined), {
    message: 'give exactly one of rule or audienceId',
    path: ['rule'],
  })
  .describe('A person, and a rule or a saved audience')
  .meta({
    examples: [
      { audienceId: 'aud-6f1c0e0a-0d7e-4a57-9a8e-2b8c4f0e9d11', id: 'u-1007' },
      { rule: EXAMPLE_RULE, id: 'u-1007' },
    ],
  });
export const explainSchema = z
  .object({
    id: z.string().describe('the profile id the answer is about (a merged id answers for the profile it joined)'),
    matches: z
      .boolean()
      .describe(
        'whether the person is in the rule’s audience at computedAt: the membership a preview computes at that instant',
      ),
    explanation: explanationNodeSchema,
    reason: z
      .string()
      .optional()
      .describe('why the person matches nothing although the rule may hold (opted out of personalization)'),
    computedAt: time,
  })
  .describe('Why a person is, or is not, in an audience')
  .meta({
    examples: [
      {
        id: 'u-1007',
        matches: true,
        explanation: {
          all: [
            { interest: { tag: 'category:dress', minValue: 5 }, holds: true, observed: 6.2 },
            { not: { stage: { in: ['churned'] }, holds: false, observed: 'loyal' }, holds: true },
          ],
          holds: true,
        },
        computedAt: '2026-11-30T04:00:00.000Z',
      },
    ],
  });

const idParams = z.object({ id: audienceIdSchema.describe('audience id') });
const membersQuery = z.object({
  cursor: cursorParam,
  limit: z.coerce.number().int().min(1).max(1000).default(100).describe('at most 1000'),
});

export type AudienceRouteDeps = {
  engine: AudienceEngine;
  store: AudienceStore;
  /** The profile key an id answers for (merged ids resolved), or undefined when neither store knows it. */
  profileOf: (id: string) => Promise<string | undefined>;
  read: preHandlerHookHandler;
  write: preHandlerHookHandler;
  /** Rule evaluations at once (PREVIEW_CONCURRENCY); more are answered 429. */
  concurrency: number;
  /** PREVIEW_STATEMENT_TIMEOUT_MS, named in the 503 when Postgres cancels an evaluation's statement. */
  statementTimeoutMs: number;
};

const unauthorized = errorResponse('Missing or unknown bearer token (QRY_UNAUTHORIZED)', {
  'WWW-Authenticate': 'Bearer',
});
const notFound = errorResponse('No audience with this id (QRY_AUDIENCE_NOT_FOUND)');
const costly = errorResponse(
  'A statement of the rule evaluation ran past PREVIEW_STATEMENT_TIMEOUT_MS and was cancelled (QRY_RULE_TOO_COSTLY)',
);
const busy = errorResponse(
  'PREVIEW_CONCURRENCY rule evaluations are already running on this instance (QRY_AUDIENCES_BUSY)',
  { 'Retry-After': 'seconds to wait before retrying' },
);

/** Audiences (docs/api.md §5.4): preview, explain, save, list, get, delete, members. */
export function registerAudienceRoutes(app: FastifyInstance, deps: AudienceRouteDeps): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const common = { tags: ['audiences'], security: [{ bearerAuth: [] }] };
  let running = 0;
  /**
   * Evaluates a rule over everyone within the load limits: its did-days within MAX_RULE_DID_DAYS
   * (else 400), and at most `concurrency` evaluations at once (else 429). Undefined once refused.
   */
  async function bounded<T>(reply: FastifyReply, rule: Rule, evaluate: () => Promise<T>): Promise<T | undefined> {
    const cost = ruleDidDays(rule);
    if (cost > MAX_RULE_DID_DAYS) {
      const message = `the rule's did leaves cover ${cost} days in all (the sum of their inLastDays); at most ${MAX_RULE_DID_DAYS}`;
      await sendError(reply, 400, QueryErrors.INVALID_REQUEST, message, [{ path: 'body.rule', message }]);
      return undefined;
    }
    if (running >= deps.concurrency) {
      reply.header('Retry-After', '1');
      await sendError(
        reply,
        429,
        QueryErrors.AUDIENCES_BUSY,
        `${deps.concurrency} rule evaluations (previews, new audiences) are running on this instance; retry in a second`,
      );
      return undefined;
    }
    running += 1;
    try {
      return await withinTimeout(reply, evaluate);
    } finally {
      running -= 1;
    }
  }
  /** Runs an evaluation; a statement Postgres cancelled past its timeout is a 503 (undefined), not a 500. */
  async function withinTimeout<T>(reply: FastifyReply, evaluate: () => Promise<T>): Promise<T | undefined> {
    try {
      return await evaluate();
    } catch (err) {
      if (!isStatementTimeout(err)) throw err;
      await sendError(
        reply,
        503,
        QueryErrors.RULE_TOO_COSTLY,
        `evaluating the rule took longer than ${deps.statementTimeoutMs} ms (PREVIEW_STATEMENT_TIMEOUT_MS) in Postgres; narrow the rule or retry later`,
      );
      return undefined;
    }
  }

  r.post(
    '/v1/audiences/preview',
    {
      preHandler: deps.read,
      schema: {
        ...common,
        operationId: 'previewAudience',
        summary: 'How many people a rule holds for now, with a sample',
        body: previewRequestSchema,
        response: {
          200: previewSchema,
          400: errorResponse(
            'The rule is malformed or over the limits (QRY_INVALID_REQUEST; `error.details` names each path)',
          ),
          401: unauthorized,
          403: errorResponse('The token lacks profiles:read (QRY_FORBIDDEN)'),
          429: busy,
          503: costly,
        },
      },
    },
    async (request, reply) => {
      const nowMs = Date.now();
      const members = await bounded(reply, request.body.rule, () => deps.engine.members(request.body.rule, nowMs));
      if (members === undefined) return reply;
      return { count: members.length, sample: members.slice(0, SAMPLE), computedAt: new Date(nowMs).toISOString() };
    },
  );

  r.post(
    '/v1/audiences/explain',
    {
      preHandler: deps.read,
      schema: {
        ...common,
        operationId: 'explainAudience',
        summary:
          'Why a person is, or is not, in an audience now: the rule with holds on every node and the value each leaf compared',
        body: explainRequestSchema,
        response: {
          200: explainSchema,
          400: errorResponse(
            'The rule, audience id or person id is malformed, or both or neither of rule and audienceId are given (QRY_INVALID_REQUEST; `error.details` names each path)',
          ),
          401: unauthorized,
          403: errorResponse('The token lacks profiles:read (QRY_FORBIDDEN)'),
          404: errorResponse(
            'No profile for the id (QRY_PROFILE_NOT_FOUND), or no saved audience with audienceId (QRY_AUDIENCE_NOT_FOUND)',
          ),
          503: costly,
        },
      },
    },
    async (request, reply) => {
      const { audienceId: saved, id } = request.body;
      let rule = request.body.rule;
      if (saved !== undefined) {
        const a = await deps.store.get(saved);
        if (!a) return sendError(reply, 404, QueryErrors.AUDIENCE_NOT_FOUND, `no audience ${saved}`);
        rule = a.rule as Rule;
      }
      const key = await deps.profileOf(id);
      if (key === undefined) return sendError(reply, 404, QueryErrors.PROFILE_NOT_FOUND, `no profile for id ${id}`);
      const nowMs = Date.now();
      const answer = await withinTimeout(reply, () => deps.engine.explain(rule!, nowMs, key));
      if (answer === undefined) return reply;
      return { id: key, ...answer, computedAt: new Date(nowMs).toISOString() };
    },
  );

  r.post(
    '/v1/audiences',
    {
      preHandler: deps.write,
      schema: {
        ...common,
        operationId: 'createAudience',
        summary:
          'Save an audience: its members are computed now and kept current; entries and exits go to profile.audiences.v1',
        body: audienceRequestSchema,
        response: {
          201: audienceSchema,
          400: errorResponse(
            'The name or rule is malformed or over the limits (QRY_INVALID_REQUEST; `error.details` names each path)',
          ),
          401: unauthorized,
          403: errorResponse('The token lacks audiences:write (QRY_FORBIDDEN)'),
          429: busy,
          503: costly,
        },
      },
    },
    async (request, reply) => {
      const nowMs = Date.now();
      const snapshot = await bounded(reply, request.body.rule, () => deps.engine.snapshot(request.body.rule, nowMs));
      if (snapshot === undefined) return reply;
      const { members, watch } = snapshot;
      const saved = await deps.store.create({
        id: `aud-${randomUUID()}`,
        name: request.body.name,
        rule: request.body.rule,
        members,
        watch,
        nowMs,
      });
      return reply.code(201).send(saved as z.infer<typeof audienceSchema>);
    },
  );

  r.get(
    '/v1/audiences',
    {
      preHandler: deps.read,
      schema: {
        ...common,
        operationId: 'listAudiences',
        summary: 'Every saved audience',
        response: {
          200: audienceListSchema,
          401: unauthorized,
          403: errorResponse('The token lacks profiles:read (QRY_FORBIDDEN)'),
        },
      },
    },
    async () => ({ audiences: (await deps.store.list()) as z.infer<typeof audienceSchema>[] }),
  );

  r.get(
    '/v1/audiences/:id',
    {
      preHandler: deps.read,
      schema: {
        ...common,
        operationId: 'getAudience',
        summary: 'One saved audience',
        params: idParams,
        response: {
          200: audienceSchema,
          400: errorResponse('Invalid id (QRY_INVALID_REQUEST)'),
          401: unauthorized,
          403: errorResponse('The token lacks profiles:read (QRY_FORBIDDEN)'),
          404: notFound,
        },
      },
    },
    async (request, reply) => {
      const a = await deps.store.get(request.params.id);
      if (!a) return sendError(reply, 404, QueryErrors.AUDIENCE_NOT_FOUND, `no audience ${request.params.id}`);
      return a as z.infer<typeof audienceSchema>;
    },
  );

  r.delete(
    '/v1/audiences/:id',
    {
      preHandler: deps.write,
      schema: {
        ...common,
        operationId: 'deleteAudience',
        summary: 'Delete a saved audience (no exits are published for it)',
        params: idParams,
        response: {
          204: z.null().describe('Deleted'),
          400: errorResponse('Invalid id (QRY_INVALID_REQUEST)'),
          401: unauthorized,
          403: errorResponse('The token lacks audiences:write (QRY_FORBIDDEN)'),
          404: notFound,
        },
      },
    },
    async (request, reply) => {
      if (!(await deps.store.remove(request.params.id)))
        return sendError(reply, 404, QueryErrors.AUDIENCE_NOT_FOUND, `no audience ${request.params.id}`);
      return reply.code(204).send(null);
    },
  );

  r.get(
    '/v1/audiences/:id/members',
    {
      preHandler: deps.read,
      schema: {
        ...common,
        operationId: 'getAudienceMembers',
        summary: 'A page of members, in id order; every member appears exactly once across pages',
        params: idParams,
        querystring: membersQuery,
        response: {
          200: membersSchema,
          400: errorResponse('Invalid id, cursor or limit (QRY_INVALID_REQUEST, QRY_INVALID_CURSOR)'),
          401: unauthorized,
          403: errorResponse('The token lacks profiles:read (QRY_FORBIDDEN)'),
          404: notFound,
        },
      },
    },
    async (request, reply) => {
      const { cursor, limit } = request.query;
      const after = cursor === undefined ? undefined : decodeCursor(cursor);
      if (cursor !== undefined && after === undefined)
        return sendError(reply, 400, QueryErrors.INVALID_CURSOR, 'cursor is not one this API gave out');
      if (!(await deps.store.get(request.params.id)))
        return sendError(reply, 404, QueryErrors.AUDIENCE_NOT_FOUND, `no audience ${request.params.id}`);
      const page = await deps.store.members(request.params.id, after, limit);
      const last = page.members.at(-1);
      return { members: page.members, nextCursor: page.more && last !== undefined ? encodeCursor(last) : null };
    },
  );
}
