import { migratedPair } from './migrated-pair';

/**
 * Migration 150 builds four function bodies from the ones before it (`pg_proc.prosrc`) with a string
 * concatenation and a `regexp_replace`: had the pattern stopped matching (a later edit of migration 080's
 * bodies, a different line ending), the migration would still succeed and silently leave the function
 * as it was. Here a schema migrated up to 149 and one up to 150 are compared body by body: each must be
 * exactly the old body with its guard added, in PL/pgSQL, with `jit = off`.
 */
describe('migration 150 (the follow upkeep functions)', () => {
  const { before, after, fn, expectGuarded } = migratedPair(149, 150);

  it('makes follow_daily_move PL/pgSQL: an empty call returns first, then exactly the old statement', async () => {
    const signature = `follow_daily_move(${before}.follow_history[], ${before}.follow_history[])`;
    const old = await fn(before, signature);
    const now = await fn(after, signature.replaceAll(before, after));
    expect(old.lang).toBe('sql');
    expect(now.lang).toBe('plpgsql');
    expect(now.config).toContain('jit=off');
    expect(now.src).toBe(
      '\nBEGIN\n  IF cardinality(removed) = 0 AND cardinality(added) = 0 THEN\n    RETURN;\n  END IF;\n' +
        old.src +
        'END\n',
    );
  });

  it.each([
    ['follows_mix_ins', 'NOT EXISTS (SELECT 1 FROM new_rows WHERE following)'],
    ['follows_mix_del', 'NOT EXISTS (SELECT 1 FROM old_rows WHERE following)'],
    [
      'follows_mix_upd',
      'NOT EXISTS (SELECT 1 FROM old_rows WHERE following) AND NOT EXISTS (SELECT 1 FROM new_rows WHERE following)',
    ],
  ])('gives %s its guard before the old body, which is otherwise unchanged', async (name, guard) => {
    await expectGuarded(name, guard);
  });
});
