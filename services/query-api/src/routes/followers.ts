import { TARGET_TYPES } from '@pstream/events';
import { errorResponse } from '@pstream/http';
import { countStrongTags, type Keys } from '@pstream/interest-store';
import { STAGES, VALUE_TIERS } from '@pstream/lifecycle';
import type { FollowersReader, ModelStore, Target } from '@pstream/profile-store';
import type { DecayParams } from '@pstream/scoring';
import type { FastifyInstance, preHandlerHookHandler } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Redis } from '@pstream/platform';
import { AGE_BANDS, ageBand } from '@pstream/traits-model';
import { z } from 'zod';
import { targetParams } from './catalog';

/** traits.city and traits.gender: the most frequent values kept, the rest counted (gender) or left out (city). */
const TOP_VALUES = 10;
const TOP_INTERESTS = 10;
/** §5.5: a follower counts for a tag when their value in it is at least this. */
const STRONG_VALUE = 5;

/** A facet's values by count, most first, ties by value. */
const ranked = (counts: Record<string, number>): [string, number][] =>
  Object.entries(counts).sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1));

const targetSchema = z.object({ type: z.enum(TARGET_TYPES), id: z.string() });
const counts = <T extends readonly [string, ...string[]]>(names: T) =>
  z.object(Object.fromEntries(names.map((n) => [n, z.number()])) as { [K in T[number]]: z.ZodNumber });
export const followersSchema = z
  .object({
    target: targetSchema,
    followers: z.number().describe('current followers (profile ids, after merges); exact'),
    daily: z
      .array(z.object({ date: z.string(), follows: z.number(), unfollows: z.number() }))
      .describe('the last 30 UTC days, oldest first; exact'),
    stages: counts(STAGES).describe('followers per lifecycle stage; exact'),
    tiers: z.object({ value: counts(VALUE_TIERS) }).describe('followers per value tier; exact'),
    traits: z.object({
      gender: z
        .record(z.string(), z.number())
        .describe(
          'followers per gender trait (lower-cased; "unknown" without one) for the 10 most frequent values; exact',
        ),
      genderOther: z.number().describe('followers whose gender is none of the 10 in `gender`; exact'),
      ageBand: counts(AGE_BANDS).describe('from birthYear, else age; exact'),
      city: z.array(z.object({ value: z.string(), count: z.number() })).describe('top 10 cities; exact'),
      predicted: z
        .object({ gender: z.record(z.string(), z.number()), ageBand: z.record(z.string(), z.number()) })
        .describe(
          'of the followers without a given gender / age, how many are predicted as each value (docs/api.md §5.9); over `sample`, scaled to all followers when the sample is not exact',
        ),
    }),
    topInterests: z
      .array(
        z.object({
          tag: z.string(),
          share: z.number().describe('share of followers (who allow personalization) whose value in the tag is ≥ 5'),
        }),
      )
      .describe('top 10 by share'),
    sample: z
      .object({ size: z.number(), exact: z.boolean() })
      .describe(
        'topInterests is computed over this many followers who allow personalization: all of them when exact, else a uniform sample',
      ),
    computedAt: z.string(),
  })
  .describe('Who follows a target (docs/api.md §5.5)');
export const overlapSchema = z
  .object({
    a: z.object({ target: targetSchema, followers: z.number() }),
    b: z.object({ target: targetSchema, followers: z.number() }),
    both: z.number().describe('followers of both'),
    jaccard: z.number().describe('both / followers of either'),
    exact: z
      .boolean()
      .describe(
        'false when both targets have more followers than the sketch size: then both and jaccard are estimates',
      ),
  })
  .describe('How two targets’ followers overlap (docs/api.md §5.5)');

/**
 * A stored 'birth' facet value (`by:YYYY`, `age:N`, `unknown`) as an age in years at `nowMs` (birthday unknown: by
 * calendar year).
 */
export function ageOf(birth: string, nowMs: number): number | undefined {
  if (birth.startsWith('by:')) return new Date(nowMs).getUTCFullYear() - Number(birth.slice(3));
  if (birth.startsWith('age:')) return Number(birth.slice(4));
  return undefined;
}

const zeroes = <T extends string>(names: readonly T[]) =>
  Object.fromEntries(names.map((n) => [n, 0])) as Record<T, number>;

export type FollowerRouteDeps = {
  redis: Redis;
  /** More connections to the same Redis server, to read the sample's states over at once (`countStrongTags`). */
  sampleConnections?: readonly Redis[];
  keys: Keys;
  followers: FollowersReader;
  decay: DecayParams;
  valueScale: number;
  sampleSize: number;
  sketchSize: number;
  guard: preHandlerHookHandler;
  /** Per predicted trait, how many of these people are predicted as each value (§5.9). */
  predictedCounts: ModelStore['predictedCounts'];
};

/** `GET /v1/targets/{type}/{id}/followers` and `.../followers/overlap?with=type:id` (docs/api.md §5.5). */
export function registerFollowerRoutes(app: FastifyInstance, deps: FollowerRouteDeps): void {
  const auth = {
    401: errorResponse('Missing or unknown bearer token (QRY_UNAUTHORIZED)', { 'WWW-Authenticate': 'Bearer' }),
    403: errorResponse('The token lacks profiles:read (QRY_FORBIDDEN)'),
  };
  const typed = app.withTypeProvider<ZodTypeProvider>();
  typed.get(
    '/v1/targets/:type/:id/followers',
    {
      preHandler: deps.guard,
      schema: {
        operationId: 'getFollowers',
        tags: ['followers'],
        summary:
          'Who follows a target: count, 30-day follows and unfollows, stage, tier, gender, age, city and interest mixes',
        description:
          'A target nobody follows answers zeros. Every count is exact; topInterests is exact up to the sample size, then sampled (see `sample`).',
        security: [{ bearerAuth: [] }],
        params: targetParams,
        response: { 200: followersSchema, 400: errorResponse('Invalid target (QRY_INVALID_REQUEST)'), ...auth },
      },
    },
    async (request) => {
      const target: Target = request.params;
      const nowMs = Date.now();
      const [mix, sample] = await Promise.all([
        deps.followers.mix(target, nowMs),
        deps.followers.personalizedSample(target, deps.sampleSize),
      ]);
      const [strong, predictedInSample] = await Promise.all([
        countStrongTags(deps.redis, deps.keys, sample, {
          nowMs,
          minValue: STRONG_VALUE,
          valueScale: deps.valueScale,
          decay: deps.decay,
          connections: deps.sampleConnections,
        }),
        deps.predictedCounts(sample),
      ]);
      // predictions exist only for people who allow personalization, the people the sample is drawn from
      const exact = sample.length < deps.sampleSize;
      const scaled = (counts: Record<string, number>) =>
        Object.fromEntries(
          Object.entries(counts).map(([v, n]) => [v, exact ? n : Math.round((n * mix.followers) / sample.length)]),
        );
      const facet = (name: string) => mix.facets[name] ?? {};
      const stages = zeroes(STAGES);
      for (const [v, n] of Object.entries(facet('stage'))) if (v in stages) stages[v as keyof typeof stages] += n;
      const value = zeroes(VALUE_TIERS);
      for (const [v, n] of Object.entries(facet('value'))) if (v in value) value[v as keyof typeof value] += n;
      const ages = zeroes(AGE_BANDS);
      for (const [v, n] of Object.entries(facet('birth'))) ages[ageBand(ageOf(v, nowMs))] += n;
      const city = ranked(facet('city'))
        .slice(0, TOP_VALUES)
        .map(([v, n]) => ({ value: v, count: n }));
      const genders = ranked(facet('gender'));
      const genderOther = genders.slice(TOP_VALUES).reduce((sum, [, n]) => sum + n, 0);
      const topInterests = [...strong]
        .map(([tag, n]) => ({ tag, share: n / sample.length }))
        .sort((x, y) => y.share - x.share || (x.tag < y.tag ? -1 : 1))
        .slice(0, TOP_INTERESTS);
      return {
        target,
        followers: mix.followers,
        daily: mix.daily,
        stages,
        tiers: { value },
        traits: {
          gender: Object.fromEntries(genders.slice(0, TOP_VALUES)),
          genderOther,
          ageBand: ages,
          city,
          predicted: { gender: scaled(predictedInSample.gender), ageBand: scaled(predictedInSample.ageBand) },
        },
        topInterests,
        sample: { size: sample.length, exact },
        computedAt: new Date(nowMs).toISOString(),
      };
    },
  );
  typed.get(
    '/v1/targets/:type/:id/followers/overlap',
    {
      preHandler: deps.guard,
      schema: {
        operationId: 'getFollowerOverlap',
        tags: ['followers'],
        summary: 'How a target’s followers overlap another target’s',
        security: [{ bearerAuth: [] }],
        params: targetParams,
        querystring: z.object({
          with: z
            .string()
            .regex(
              new RegExp(`^(${TARGET_TYPES.join('|')}):.{1,128}$`),
              `must be type:id with type one of ${TARGET_TYPES.join(', ')}`,
            )
            .describe('the other target, e.g. shop:s-2'),
        }),
        response: { 200: overlapSchema, 400: errorResponse('Invalid target or `with` (QRY_INVALID_REQUEST)'), ...auth },
      },
    },
    async (request) => {
      const a: Target = request.params;
      const colon = request.query.with.indexOf(':');
      const b = { type: request.query.with.slice(0, colon) as Target['type'], id: request.query.with.slice(colon + 1) };
      const o = await deps.followers.overlap(a, b, deps.sketchSize);
      return {
        a: { target: a, followers: o.a },
        b: { target: b, followers: o.b },
        both: o.both,
        jaccard: o.jaccard,
        exact: o.exact,
      };
    },
  );
}
