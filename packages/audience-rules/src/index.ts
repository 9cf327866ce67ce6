import { EVENT_TYPES, tagSchema, targetSchema } from '@pstream/events';
import { SOCIAL_TIERS, STAGES, VALUE_TIERS } from '@pstream/lifecycle';
import { PREDICTED_TRAITS } from '@pstream/traits-model';
import { z } from 'zod';

/** Limits of one rule: deep or huge rules would make one preview cost without bound. */
export const RULE_LIMITS = { maxDepth: 6, maxNodes: 64, maxChildren: 32, maxDays: 365, maxInValues: 100 } as const;

const TRAIT_OPS = ['eq', 'ne', 'in', 'gt', 'gte', 'lt', 'lte', 'exists'] as const;
const scalar = z.union([z.string().max(256), z.number(), z.boolean()]);

export const interestLeaf = z.strictObject({
  tag: tagSchema,
  minValue: z.number().gt(0).max(10).describe('the tag’s value (0-10) at the time of asking must be at least this'),
});
export const stageLeaf = z.strictObject({ in: z.array(z.enum(STAGES)).min(1) });
export const tierLeaf = z
  .strictObject({
    value: z.array(z.enum(VALUE_TIERS)).min(1).optional(),
    social: z.array(z.enum(SOCIAL_TIERS)).min(1).optional(),
  })
  .refine((t) => (t.value === undefined) !== (t.social === undefined), {
    message: 'give exactly one of value or social',
  });
/** Trait leaves on a prediction (§5.9) name `predicted.<trait>`; only these ops apply to a predicted class. */
const PREDICTED_NAMES = PREDICTED_TRAITS.map((t) => `predicted.${t}`);
const PREDICTED_OPS: readonly string[] = ['eq', 'ne', 'in', 'exists'];
export const traitLeaf = z
  .strictObject({
    name: z
      .string()
      .regex(
        /^([A-Za-z_][A-Za-z0-9_]{0,63}|predicted\.[A-Za-z]+)$/,
        `must be a trait name ([A-Za-z_][A-Za-z0-9_]{0,63}) or one of ${PREDICTED_NAMES.join(', ')}`,
      ),
    op: z.enum(TRAIT_OPS),
    value: z.union([scalar, z.array(scalar).min(1).max(RULE_LIMITS.maxInValues)]).optional(),
    minConfidence: z
      .number()
      .min(0)
      .max(1)
      .optional()
      .describe('predicted.* only: the prediction’s confidence must be at least this (default 0)'),
  })
  .superRefine((t, ctx) => {
    const bad = (message: string) => ctx.addIssue({ code: 'custom', path: ['value'], message });
    if (t.name.startsWith('predicted.')) {
      if (!PREDICTED_NAMES.includes(t.name))
        ctx.addIssue({
          code: 'custom',
          path: ['name'],
          message: `a predicted trait is one of ${PREDICTED_NAMES.join(', ')}`,
        });
      if (!PREDICTED_OPS.includes(t.op))
        ctx.addIssue({ code: 'custom', path: ['op'], message: `a predicted trait takes ${PREDICTED_OPS.join(', ')}` });
    } else if (t.minConfidence !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['minConfidence'],
        message: 'minConfidence applies to predicted.* traits only',
      });
    }
    if (t.op === 'exists') {
      if (t.value !== undefined) bad('exists takes no value');
    } else if (t.op === 'in') {
      if (!Array.isArray(t.value)) bad('in takes an array of values');
    } else if (t.op === 'eq' || t.op === 'ne') {
      if (t.value === undefined || Array.isArray(t.value)) bad(`${t.op} takes one string, number or boolean`);
    } else if (typeof t.value !== 'number') bad(`${t.op} takes a number`);
  });
export const followsLeaf = targetSchema;
export const didLeaf = z
  .strictObject({
    type: z.enum(EVENT_TYPES),
    target: targetSchema.optional(),
    tag: tagSchema.optional(),
    atLeast: z.number().int().min(1).max(1_000_000),
    inLastDays: z
      .number()
      .int()
      .min(1)
      .max(RULE_LIMITS.maxDays)
      .describe('the current UTC day and the inLastDays − 1 days before it'),
  })
  .refine((d) => d.target === undefined || d.tag === undefined, {
    message: 'give a target or a tag, not both',
    path: ['tag'],
  });

export type InterestLeaf = z.output<typeof interestLeaf>;
export type StageLeaf = z.output<typeof stageLeaf>;
export type TierLeaf = z.output<typeof tierLeaf>;
export type TraitLeaf = z.output<typeof traitLeaf>;
export type FollowsLeaf = z.output<typeof followsLeaf>;
export type DidLeaf = z.output<typeof didLeaf>;

export type Rule =
  | { all: Rule[] }
  | { any: Rule[] }
  | { not: Rule }
  | { interest: InterestLeaf }
  | { stage: StageLeaf }
  | { tier: TierLeaf }
  | { trait: TraitLeaf }
  | { follows: FollowsLeaf }
  | { did: DidLeaf };

const KINDS = ['all', 'any', 'not', 'interest', 'stage', 'tier', 'trait', 'follows', 'did'] as const;

/*
 * One object with every kind optional and "exactly one key" checked after, rather than a union of
 * one-key objects: a union reports a bad leaf as "no option matched" at the node, this names the
 * exact path (`rule.all.2.interest.minValue`).
 */
const node: z.ZodType<Rule> = z.lazy(
  () =>
    z
      .strictObject({
        all: z.array(node).min(1).max(RULE_LIMITS.maxChildren).optional().describe('every child holds'),
        any: z.array(node).min(1).max(RULE_LIMITS.maxChildren).optional().describe('at least one child holds'),
        not: node.optional().describe('the child does not hold'),
        interest: interestLeaf.optional(),
        stage: stageLeaf.optional(),
        tier: tierLeaf.optional().describe('one of value or social'),
        trait: traitLeaf
          .optional()
          .describe(
            'ops eq ne in gt gte lt lte exists; ne also holds without the trait; predicted.gender / predicted.ageBand: the stored prediction of people who did not give the trait',
          ),
        follows: followsLeaf.optional().describe('currently follows this target'),
        did: didLeaf
          .optional()
          .describe('events of the type (on the target / carrying the tag) at least atLeast times in the window'),
      })
      .superRefine((n, ctx) => {
        const present = KINDS.filter((k) => n[k] !== undefined);
        if (present.length !== 1)
          ctx.addIssue({
            code: 'custom',
            message: `a rule node has exactly one of ${KINDS.join(', ')} (found ${present.length === 0 ? 'none' : present.join(', ')})`,
          });
      })
      .describe('A rule node (docs/api.md §5.4): exactly one of all, any, not or a leaf') as unknown as z.ZodType<Rule>,
);

/** One node of a rule, recursively (published in OpenAPI under its own name, so the recursion is a $ref). */
export const ruleNodeSchema = node;

/** Depth (a leaf is 1) and node count of a rule. */
export function ruleSize(rule: Rule): { depth: number; nodes: number } {
  const kids = 'all' in rule ? rule.all : 'any' in rule ? rule.any : 'not' in rule ? [rule.not] : [];
  let depth = 0;
  let nodes = 1;
  for (const k of kids) {
    const s = ruleSize(k);
    depth = Math.max(depth, s.depth);
    nodes += s.nodes;
  }
  return { depth: depth + 1, nodes };
}

/**
 * What evaluating a rule may cost Postgres, in did-days: the sum of `inLastDays` over its `did`
 * leaves (each reads every matching event of its window). Previews and new audiences are refused
 * past MAX_RULE_DID_DAYS: 32 year-long `did` leaves under one `any` took seconds at a few thousand people.
 */
export const MAX_RULE_DID_DAYS = 4 * 365;

export function ruleDidDays(rule: Rule): number {
  if ('did' in rule) return rule.did.inLastDays;
  const kids = 'all' in rule ? rule.all : 'any' in rule ? rule.any : 'not' in rule ? [rule.not] : [];
  return kids.reduce((sum, k) => sum + ruleDidDays(k), 0);
}

/**
 * A rule of docs/api.md §5.4: `all` / `any` / `not` over leaves. A malformed rule fails with issues that
 * name the path (`rule.all.2.interest.minValue`), and rules deeper than `maxDepth` or with more
 * than `maxNodes` nodes are refused.
 */
export const ruleSchema: z.ZodType<Rule> = node.superRefine((rule, ctx) => {
  const { depth, nodes } = ruleSize(rule);
  if (depth > RULE_LIMITS.maxDepth)
    ctx.addIssue({ code: 'custom', message: `rule is ${depth} levels deep; at most ${RULE_LIMITS.maxDepth}` });
  if (nodes > RULE_LIMITS.maxNodes)
    ctx.addIssue({ code: 'custom', message: `rule has ${nodes} nodes; at most ${RULE_LIMITS.maxNodes}` });
});
