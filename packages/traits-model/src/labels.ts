/** The traits a model predicts (SPEC §5.9). */
export const PREDICTED_TRAITS = ['gender', 'ageBand'] as const;
export type PredictedTrait = (typeof PREDICTED_TRAITS)[number];

/** §5.5's age bands; `unknown` is never a class a model learns or predicts. */
export const AGE_BANDS = ['<18', '18-24', '25-29', '30-34', '35-39', '40-49', '50+', 'unknown'] as const;
export type AgeBand = (typeof AGE_BANDS)[number];

/** The §5.5 age band of an age in years. */
export function ageBand(age: number | undefined): AgeBand {
  if (age === undefined || !Number.isFinite(age) || age < 0) return 'unknown';
  if (age < 18) return '<18';
  if (age < 25) return '18-24';
  if (age < 30) return '25-29';
  if (age < 35) return '30-34';
  if (age < 40) return '35-39';
  if (age < 50) return '40-49';
  return '50+';
}

/**
 * The traits that count as having GIVEN each predicted trait: a person with any of them is
 * trained on (when it yields a label) and never predicted. Postgres's audience leaf reads the same list.
 */
export const GIVEN_BY: Record<PredictedTrait, readonly string[]> = {
  gender: ['gender'],
  ageBand: ['birthYear', 'age'],
};

/**
 * A stored birthYear or age, read as migration 006's 'birth' facet reads them (a 4-digit year 19xx/20xx, or a number).
 */
function ageFrom(traits: Record<string, unknown>, nowMs: number): number | undefined {
  const by = traits.birthYear;
  if ((typeof by === 'number' || typeof by === 'string') && /^(19|20)[0-9]{2}$/.test(String(by)))
    return new Date(nowMs).getUTCFullYear() - Number(by);
  const age = traits.age;
  if ((typeof age === 'number' || typeof age === 'string') && /^[0-9]{1,3}$/.test(String(age))) return Number(age);
  return undefined;
}

/**
 * The class a person gave for `trait`, or undefined when they gave none (or nothing usable):
 * gender lower-cased and trimmed (as the follower mix counts it), the age band from birthYear, else age.
 */
export function givenLabel(trait: PredictedTrait, traits: Record<string, unknown>, nowMs: number): string | undefined {
  if (trait === 'gender') {
    const g = traits.gender;
    const v = typeof g === 'string' ? g.trim().toLowerCase() : undefined;
    return v ? v : undefined;
  }
  const band = ageBand(ageFrom(traits, nowMs));
  return band === 'unknown' ? undefined : band;
}

/** Whether the person gave the trait at all (even unusably): then no prediction is served or stored for them. */
export const gaveTrait = (trait: PredictedTrait, traits: Record<string, unknown>): boolean =>
  GIVEN_BY[trait].some((name) => traits[name] !== undefined && traits[name] !== null);
