import { traitValueSchema } from '@pstream/events';
import { z } from 'zod';

/**
 * Traits are small scalars (docs/events.md §3.2). The well-known ones below have a meaning the product
 * uses (follower insight reads gender, age band and city, §5.5), so each gets a precise rule;
 * any other trait is accepted under a name/size cap, so one client cannot turn a profile into a
 * document store.
 */
export const WELL_KNOWN_TRAITS = {
  /** Free text as the app knows it ("female", "male", "f", "other"); not interpreted here. */
  gender: z.string().min(1).max(32),
  /** Year of birth; follower insight derives the age band from it. */
  birthYear: z.number().int('must be a whole year').min(1900).max(2100),
  /** Age in years when the app knows no birth year. */
  age: z.number().int('must be whole years').min(0).max(150),
  city: z.string().min(1).max(64),
  region: z.string().min(1).max(64),
  country: z.string().min(1).max(64),
  name: z.string().min(1).max(128),
  firstName: z.string().min(1).max(64),
  lastName: z.string().min(1).max(64),
  email: z.email('must be an e-mail address').max(254),
  phone: z
    .string()
    .regex(/^\+?[0-9][0-9 ().-]{2,31}$/, 'must be a phone number: digits, spaces, ( ) . - and an optional leading +'),
} as const;
export type WellKnownTrait = keyof typeof WELL_KNOWN_TRAITS;

/** Any other trait: at most this many per identify… */
export const MAX_OTHER_TRAITS = 32;
/** …named like an identifier… */
export const TRAIT_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
/** …with a scalar value: the topic contract's own trait rule. */
export const otherTraitSchema = traitValueSchema;

const wellKnown = new Map<string, z.ZodType>(Object.entries(WELL_KNOWN_TRAITS));

/**
 * The traits object of an identify: well-known traits by their rules, the rest capped. A
 * well-known trait may be null, which clears it.
 */
export const traitsSchema = z
  .record(z.string(), z.unknown())
  .superRefine((traits, ctx) => {
    let others = 0;
    for (const [key, value] of Object.entries(traits)) {
      const rule = wellKnown.get(key);
      if (rule !== undefined) {
        if (value === null) continue;
        const r = rule.safeParse(value);
        if (!r.success)
          for (const issue of r.error.issues) ctx.addIssue({ code: 'custom', path: [key], message: issue.message });
        continue;
      }
      others += 1;
      if (!TRAIT_NAME.test(key)) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: 'a trait name is 1-64 characters of A-Z a-z 0-9 _, starting with a letter',
        });
        continue;
      }
      const r = otherTraitSchema.safeParse(value);
      if (!r.success)
        ctx.addIssue({ code: 'custom', path: [key], message: r.error.issues[0]?.message ?? 'is not a scalar' });
    }
    if (others > MAX_OTHER_TRAITS) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: `at most ${MAX_OTHER_TRAITS} traits besides the well-known ones (${Object.keys(WELL_KNOWN_TRAITS).join(', ')})`,
      });
    }
  })
  .describe(
    `Small scalars. Well-known traits with their own rules: ${Object.keys(WELL_KNOWN_TRAITS).join(', ')} (null clears one). ` +
      `At most ${MAX_OTHER_TRAITS} others, named [A-Za-z][A-Za-z0-9_]{0,63}, each a string (≤256), number, boolean or null.`,
  ) as unknown as z.ZodType<Record<string, string | number | boolean | null>>;
