import { errorResponse } from '@pstream/http';
import type { ModelStore } from '@pstream/profile-store';
import { PREDICTED_TRAITS } from '@pstream/traits-model';
import type { FastifyInstance, preHandlerHookHandler } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';

const time = z.string().describe('ISO-8601 UTC');
export const modelSchema = z
  .object({
    trait: z.enum(PREDICTED_TRAITS),
    trainedAt: time.nullable().describe('null until the first training'),
    trainedOn: z
      .number()
      .describe(
        'people the model was trained on: those who gave the trait and allow personalization, minus the held-out part',
      ),
    holdout: z.object({
      size: z.number().describe('people held out (by a hash of their id) and not trained on'),
      accuracy: z.number().nullable().describe('share of the held-out people whose given trait the model predicts'),
      baseline: z
        .number()
        .nullable()
        .describe(
          'share of them an answer of always the most common class gets right: a model worth serving scores well above it',
        ),
    }),
    training: z
      .object({ requestedAt: time })
      .nullable()
      .describe('a training asked for and not done yet; null when none is pending (done: trainedAt ≥ requestedAt)'),
    lastError: z
      .string()
      .nullable()
      .describe('why the last run trained nothing (e.g. fewer than two classes given); null after a success'),
  })
  .describe('A predicted-trait model (docs/api.md §5.9)');
export const modelsSchema = z.object({ models: z.array(modelSchema) }).describe('Every predicted-trait model');
export const trainingSchema = z
  .object({
    trait: z.enum(PREDICTED_TRAITS),
    requestedAt: time.describe('the training is done once GET /v1/models shows trainedAt at or after this'),
  })
  .describe('A training asked for');

export type ModelRouteDeps = { store: ModelStore; read: preHandlerHookHandler; write: preHandlerHookHandler };

const auth = (scope: string) => ({
  401: errorResponse('Missing or unknown bearer token (QRY_UNAUTHORIZED)', { 'WWW-Authenticate': 'Bearer' }),
  403: errorResponse(`The token lacks ${scope} (QRY_FORBIDDEN)`),
});

/** `GET /v1/models`, `POST /v1/models/{trait}/train` (docs/api.md §5.9). */
export function registerModelRoutes(app: FastifyInstance, deps: ModelRouteDeps): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  typed.get(
    '/v1/models',
    {
      preHandler: deps.read,
      schema: {
        operationId: 'listModels',
        tags: ['models'],
        summary:
          'The predicted-trait models: when each was trained, on how many people, and its held-out accuracy beside the majority-class baseline',
        security: [{ bearerAuth: [] }],
        response: { 200: modelsSchema, ...auth('profiles:read') },
      },
    },
    async () => ({
      models: (await deps.store.list()).map((m) => ({
        trait: m.trait,
        trainedAt: m.trainedAt,
        trainedOn: m.trainedOn,
        holdout: m.holdout,
        training: m.requestedAt === null ? null : { requestedAt: m.requestedAt },
        lastError: m.lastError,
      })),
    }),
  );
  typed.post(
    '/v1/models/:trait/train',
    {
      preHandler: deps.write,
      schema: {
        operationId: 'trainModel',
        tags: ['models'],
        summary: 'Ask for a training of the trait’s model now; a trainer picks it up within MODEL_POLL_INTERVAL_MS',
        security: [{ bearerAuth: [] }],
        params: z.object({ trait: z.enum(PREDICTED_TRAITS).describe('the predicted trait') }),
        response: {
          202: trainingSchema,
          400: errorResponse('Unknown trait (QRY_INVALID_REQUEST)'),
          ...auth('audiences:write'),
        },
      },
    },
    async (request, reply) => {
      const requestedAt = await deps.store.request(request.params.trait, Date.now());
      return reply.code(202).send({ trait: request.params.trait, requestedAt });
    },
  );
}
