import type { FactLeaf } from '@pstream/profile-store';
import { z } from 'zod';
import {
  didLeaf,
  followsLeaf,
  interestLeaf,
  stageLeaf,
  tierLeaf,
  traitLeaf,
  type InterestLeaf,
  type Rule,
} from './rule';

/*
 * Why a person is, or is not, in an audience (docs/api.md §5.4 "Explain"): the rule itself with
 * `holds` on every node and, on every leaf, `observed` — the value the leaf compared. The leaves
 * are answered by the same sources and conditions as the audience engine (plan.ts), and the
 * nodes above them are the plain boolean algebra of all / any / not, so the answer agrees with
 * the membership a preview computes at the same instant.
 */

/** One leaf of a rule, tagged by where it is answered. */
export type RuleLeaf = { kind: 'interest'; leaf: InterestLeaf } | { kind: 'fact'; leaf: FactLeaf };

/** What a leaf found for one person. `reason` says why a leaf could not be used at all. */
export type LeafOutcome = { holds: boolean; observed: unknown; reason?: string };

/** A node of an explanation: the rule node's own keys plus `holds`, and on leaves `observed` (and `reason`). */
export type ExplainedNode = { [kind: string]: unknown; holds: boolean; observed?: unknown; reason?: string };

/** The leaves of a rule in depth-first order (the order `explainRule` takes their outcomes in). */
export function ruleLeaves(rule: Rule): RuleLeaf[] {
  if ('all' in rule) return rule.all.flatMap(ruleLeaves);
  if ('any' in rule) return rule.any.flatMap(ruleLeaves);
  if ('not' in rule) return ruleLeaves(rule.not);
  if ('interest' in rule) return [{ kind: 'interest', leaf: rule.interest }];
  return [{ kind: 'fact', leaf: rule as FactLeaf }];
}

/** The explanation of `rule` from its leaves' outcomes, given in `ruleLeaves` order. */
export function explainRule(rule: Rule, outcomes: readonly LeafOutcome[]): ExplainedNode {
  let next = 0;
  const walk = (r: Rule): ExplainedNode => {
    if ('all' in r) {
      const all = r.all.map(walk);
      return { all, holds: all.every((c) => c.holds) };
    }
    if ('any' in r) {
      const any = r.any.map(walk);
      return { any, holds: any.some((c) => c.holds) };
    }
    if ('not' in r) {
      const not = walk(r.not);
      return { not, holds: !not.holds };
    }
    const outcome = outcomes[next++];
    if (outcome === undefined) throw new Error('explainRule: fewer outcomes than leaves');
    return { ...r, ...outcome };
  };
  const explained = walk(rule);
  if (next !== outcomes.length) throw new Error('explainRule: more outcomes than leaves');
  return explained;
}

/** An explanation node as a schema (published in OpenAPI under its own name; the recursion is a $ref). */
export const explanationNodeSchema: z.ZodType<ExplainedNode> = z.lazy(() =>
  z
    .object({
      all: z.array(explanationNodeSchema).optional(),
      any: z.array(explanationNodeSchema).optional(),
      not: explanationNodeSchema.optional(),
      interest: interestLeaf.optional(),
      stage: stageLeaf.optional(),
      tier: tierLeaf.optional(),
      trait: traitLeaf.optional(),
      follows: followsLeaf.optional(),
      did: didLeaf.optional(),
      holds: z.boolean().describe('whether this node holds for the person now'),
      observed: z
        .unknown()
        .optional()
        .describe(
          'leaves only: the value compared — the tag’s value (0 when absent; null when opted out), the stage, the tier, the trait’s value (null when absent), whether the person follows the target, the events counted in the window',
        ),
      reason: z.string().optional().describe('why a leaf could not be used (an opted-out person’s interest leaves)'),
    })
    .describe('A rule node (RuleNode) with holds on every node and observed on every leaf'),
) as unknown as z.ZodType<ExplainedNode>;
