import {
  createAudienceEngine,
  createInterestSource,
  createSimilarFinder,
  DEFAULT_SIMILAR,
  explanationNodeSchema,
  ruleNodeSchema,
  ruleSchema,
} from '@pstream/audiences';
import { keys, knowsPerson } from '@pstream/interest-store';
import {
  createAudienceStore,
  createFactsReader,
  createFollowersReader,
  createModelStore,
  personalizationAllowed,
} from '@pstream/profile-store';
import { findUnstorable } from '@pstream/events';
import { createHttp, openApiPlugin, sendError } from '@pstream/http';
import {
  closePool,
  createKeyring,
  registerOpsRoutes,
  statementBoundPool,
  type ReadinessCheck,
  type Registry,
} from '@pstream/platform';
import { decayParams } from '@pstream/scoring';
import type { FastifyInstance } from 'fastify';
import { isCluster, type Redis } from '@pstream/platform';
import type { Pool } from '@pstream/platform';
import type { Logger } from '@pstream/platform';
import { createTokenGuard } from './auth';
import type { QueryConfig } from './config';
import { QueryErrors } from './errors';
import { catalogEntrySchema, registerCatalogRoutes } from './routes/catalog';
import { followersSchema, overlapSchema, registerFollowerRoutes } from './routes/followers';
import type { LagSampler } from './lag/sampler';
import { interestSchema, interestsSchema, registerInterestRoutes } from './routes/interests';
import {
  audienceListSchema,
  audienceRequestSchema,
  audienceSchema,
  explainRequestSchema,
  explainSchema,
  membersSchema,
  previewRequestSchema,
  previewSchema,
  registerAudienceRoutes,
} from './routes/audiences';
import { registerExplainPage } from './routes/explain-page';
import { registerMerchantPage } from './routes/merchant';
import { modelSchema, modelsSchema, registerModelRoutes, trainingSchema } from './routes/models';
import { registerOpsPage } from './routes/ops';
import { MAX_ID_PARAM_LENGTH } from './routes/params';
import { finishErasure, startErasureRetry } from './jobs/erasure';
import { consentSchema, erasureSchema, erasureStartedSchema, registerPrivacyRoutes } from './routes/privacy';
import { profileSchema, registerProfileRoutes } from './routes/profiles';
import { registerSimilarRoutes, similarSchema } from './routes/similar';

export type QueryDeps = {
  log: Logger;
  redis: Redis;
  pool: Pool;
  /**
   * The profile reader's own connections (`GET /v1/profiles/{id}` and `/similar`; default `pool`):
   * main.ts gives it FACTS_CONNECTIONS kept open, so that a read never waits for a connection
   * another part of the service (the model trainer, audiences) made the shared pool open.
   */
  readPool?: Pool;
  checks: ReadinessCheck[];
  metrics: Registry;
  /** Consumer lag for `/ops/lag` and `/ops`; those routes answer 503 without it. */
  lag?: LagSampler;
};

/** Builds the query API without listening; main.ts listens, tests use `inject`. */
export async function buildApp(config: QueryConfig, deps: QueryDeps): Promise<FastifyInstance> {
  const app = createHttp(
    deps.log,
    { prefix: 'QRY' },
    { routerOptions: { maxParamLength: MAX_ID_PARAM_LENGTH }, requestTimeoutMs: config.REQUEST_TIMEOUT_MS },
  );
  // Before any schema runs: path ids, query values and bodies with a NUL, another control
  // character or a lone surrogate (which Postgres cannot hold), or nested past 32 levels (a rule
  // 1 000 deep would overflow the stack of the recursive rule schema), are a 400 naming the field.
  // A callback hook (no promise and microtask per request): a refusal is answered here and `done`
  // is then never called, which ends the request's hooks (Fastify's rule).
  app.addHook('preValidation', (request, reply, done) => {
    for (const [where, value] of [
      ['params', request.params],
      ['querystring', request.query],
      ['body', request.body],
    ] as const) {
      const bad = findUnstorable(value);
      if (bad !== undefined) {
        const path = bad.path === '' ? where : `${where}.${bad.path}`;
        sendError(reply, 400, QueryErrors.INVALID_REQUEST, `${path} ${bad.message}`, [{ path, message: bad.message }]);
        return;
      }
    }
    done();
  });
  await app.register(openApiPlugin, {
    title: 'pstream query API',
    version: '0.1.0',
    description:
      'Profiles, interests and lifecycle over REST (docs/api.md §5). Bearer tokens from API_TOKENS, each with scopes. ' +
      'Every error answers `{ "error": { "code", "message", "details"? } }` with a `QRY_` code; every answer carries `X-Request-Id`.',
    servers: [{ url: `http://127.0.0.1:${config.QUERY_API_PORT}`, description: 'a local instance (pnpm start)' }],
    tags: [
      {
        name: 'profiles',
        description:
          'A person’s profile, interests and similar people; any id (userId or anonymousId) resolves to its person',
      },
      {
        name: 'audiences',
        description:
          'Rules over interests, stage, tiers, traits, follows and recent activity (docs/api.md §5.4); saved audiences stay current',
      },
      {
        name: 'followers',
        description:
          'Who follows a shop, product, creator or content, and how two targets’ followers overlap (docs/api.md §5.5)',
      },
      { name: 'catalog', description: 'Tags of targets, given to events that carry none (docs/api.md §5.6)' },
      { name: 'privacy', description: 'Consent and erasure (docs/model.md §4.5, docs/api.md §5.7)' },
      {
        name: 'models',
        description:
          'Predicted gender and age band from behaviour: the models, their held-out accuracy, training (docs/api.md §5.9)',
      },
    ],
    securitySchemes: {
      bearerAuth: { type: 'http', scheme: 'bearer', description: 'a token from API_TOKENS with the route’s scope' },
    },
    schemas: {
      Profile: profileSchema,
      Interest: interestSchema,
      Interests: interestsSchema,
      Similar: similarSchema,
      Rule: ruleSchema,
      RuleNode: ruleNodeSchema,
      AudiencePreviewRequest: previewRequestSchema,
      AudiencePreview: previewSchema,
      AudienceExplainRequest: explainRequestSchema,
      AudienceExplanation: explainSchema,
      ExplanationNode: explanationNodeSchema,
      AudienceRequest: audienceRequestSchema,
      Audience: audienceSchema,
      AudienceList: audienceListSchema,
      AudienceMembers: membersSchema,
      Followers: followersSchema,
      FollowerOverlap: overlapSchema,
      CatalogEntry: catalogEntrySchema,
      Consent: consentSchema,
      ErasureStarted: erasureStartedSchema,
      Erasure: erasureSchema,
      Model: modelSchema,
      Models: modelsSchema,
      ModelTraining: trainingSchema,
    },
  });
  registerOpsRoutes(app, { checks: deps.checks, metrics: deps.metrics });

  const guard = createTokenGuard(config.API_TOKENS);
  const facts = createFactsReader(deps.readPool ?? deps.pool);
  // The reader's connections opened and its statement prepared as the service starts, so that no
  // read waits for either (BENCHMARKS.md "Reads"). Not awaited: a slow or absent Postgres must not
  // hold up the start (readiness reports it); reads asked meanwhile queue for the same connections.
  app.addHook('onReady', async () => {
    void facts.warm().catch((err: unknown) => deps.log.warn({ err }, 'could not open the profile reader connections'));
  });
  const models = createModelStore(deps.pool, deps.log);
  registerProfileRoutes(app, {
    redis: deps.redis,
    keys: keys(config.REDIS_PREFIX),
    facts,
    decay: decayParams(config.DECAY_LANDMARK, config.DECAY_HALF_LIFE_DAYS),
    valueScale: config.INTEREST_VALUE_SCALE,
    baseCurrency: config.BASE_CURRENCY,
    guard: guard('profiles:read'),
  });
  registerModelRoutes(app, { store: models, read: guard('profiles:read'), write: guard('audiences:write') });
  const decay = decayParams(config.DECAY_LANDMARK, config.DECAY_HALF_LIFE_DAYS);
  const k = keys(config.REDIS_PREFIX);
  /**
   * The profile key an id answers for (merged ids resolved by Postgres), or undefined when neither store knows the id
   * (404).
   */
  const resolver = deps.readPool === undefined ? facts : createFactsReader(deps.pool);
  const profileOf = async (id: string) =>
    (await resolver.profileKeyOf(id)) ?? ((await knowsPerson(deps.redis, k, id)) ? id : undefined);
  registerInterestRoutes(app, {
    redis: deps.redis,
    keys: k,
    profileOf,
    decay,
    valueScale: config.INTEREST_VALUE_SCALE,
    personalizationAllowed: async (id) => (await personalizationAllowed(deps.pool, [id])).has(id),
    guard: guard('profiles:read'),
  });
  // The followers' top interests read ~2 MB of states a request, /similar ~450 KB (its ~400 candidates): over a few
  // connections at once, each gets its own 64 KB of Redis's replies per turn of its event loop (the tail was these
  // turns behind other clients' work). The two routes share the extra connections: max(of the two settings) − 1.
  const single = isCluster(deps.redis) ? undefined : deps.redis;
  const readConnections = single
    ? Array.from({ length: Math.max(config.FOLLOWERS_READ_CONNECTIONS, config.SIMILAR_READ_CONNECTIONS) - 1 }, () => {
        const conn = single.duplicate({ lazyConnect: true });
        // A lost server surfaces through the follower and /similar reads that fail; without a listener
        // ioredis prints an "Unhandled error event" for every reconnect attempt of every duplicate.
        conn.on('error', () => undefined);
        return conn;
      })
    : [];
  const sampleConnections = readConnections.slice(0, config.FOLLOWERS_READ_CONNECTIONS - 1);
  app.addHook('onClose', async () => {
    for (const conn of readConnections) conn.disconnect();
  });
  registerFollowerRoutes(app, {
    redis: deps.redis,
    sampleConnections,
    keys: k,
    followers: createFollowersReader(deps.pool),
    decay,
    valueScale: config.INTEREST_VALUE_SCALE,
    sampleSize: config.FOLLOWERS_SAMPLE_SIZE,
    sketchSize: config.FOLLOWERS_SKETCH_SIZE,
    guard: guard('profiles:read'),
    predictedCounts: models.predictedCounts,
  });
  registerCatalogRoutes(app, {
    redis: deps.redis,
    keys: k,
    read: guard('profiles:read'),
    write: guard('audiences:write'),
  });
  const erasureDeps = { pool: deps.pool, redis: deps.redis, keys: k, log: deps.log };
  const erasureRetry = startErasureRetry({ ...erasureDeps, retryMs: config.ERASURE_RETRY_MS });
  app.addHook('onClose', async () => erasureRetry.stop());
  registerPrivacyRoutes(app, {
    pool: deps.pool,
    log: deps.log,
    guard: guard('privacy:write'),
    keyring: createKeyring(config, deps.pool),
    finish: finishErasure(erasureDeps),
  });
  await registerOpsPage(app, { lag: deps.lag, guard: guard('ops:read') });
  await registerMerchantPage(app);
  await registerExplainPage(app);

  const audiences = createAudienceStore(deps.pool);
  // Rule evaluations read through their own pool: Postgres cancels a statement past the timeout.
  // Like every pool of ours (createPool) it never JIT-compiles: a check of 20 000 candidates costs
  // ~335 000 (past jit_above_cost, 100 000) and its compile took 30-120 ms of a 110 ms statement — more
  // when a larger candidate set passes 500 000 and adds inlining and optimization: a tail that depends
  // on the rule, not the data (BENCHMARKS.md "Audiences and similar people", issue 21).
  const evaluation = statementBoundPool(deps.pool, config.PREVIEW_STATEMENT_TIMEOUT_MS);
  app.addHook('onClose', async () => closePool(evaluation));
  const engine = createAudienceEngine({
    facts: createAudienceStore(evaluation, { parallel: config.PREVIEW_PARALLEL }),
    interests: createInterestSource(deps.redis, k, decay, config.INTEREST_VALUE_SCALE),
  });
  registerAudienceRoutes(app, {
    engine,
    store: audiences,
    profileOf,
    read: guard('profiles:read'),
    write: guard('audiences:write'),
    concurrency: config.PREVIEW_CONCURRENCY,
    statementTimeoutMs: config.PREVIEW_STATEMENT_TIMEOUT_MS,
  });
  const finder = createSimilarFinder(deps.redis, k, audiences, {
    decay,
    valueScale: config.INTEREST_VALUE_SCALE,
    ...DEFAULT_SIMILAR,
    connections: readConnections.slice(0, config.SIMILAR_READ_CONNECTIONS - 1),
  });
  registerSimilarRoutes(app, { facts, finder, guard: guard('profiles:read') });
  return app;
}
