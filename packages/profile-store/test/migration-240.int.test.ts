import { migratedPair } from './migrated-pair';

/**
 * Migration 240 builds the three follower-mix trigger functions of `people` from the ones before it
 * (`pg_proc.prosrc`) with a `regexp_replace`, as migration 150 did for those of `follows`: had the pattern
 * stopped matching, the migration would still succeed and leave the functions as they were. A schema
 * migrated up to 239 and one up to 240 are compared body by body (each exactly the old body with its guard
 * added, PL/pgSQL, `jit = off`), and the guarded triggers still count a follower's change.
 */
describe('migration 240 (the follower-mix triggers of people)', () => {
  const { after, expectGuarded, pool } = migratedPair(239, 240);

  it.each([
    ['people_mix_ins', 'NOT EXISTS (SELECT 1 FROM new_rows)'],
    ['people_mix_del', 'NOT EXISTS (SELECT 1 FROM old_rows)'],
    ['people_mix_upd', 'NOT EXISTS (SELECT 1 FROM old_rows)'],
  ])('gives %s its guard before the old body, which is otherwise unchanged', async (name, guard) => {
    await expectGuarded(name, guard);
  });

  it('still counts, through an upsert of people who all exist, a follower whose stage changes', async () => {
    const client = await pool().connect();
    try {
      await client.query(`SET search_path TO ${after}, public`);
      await client.query(
        `INSERT INTO people (profile_key, stage, stage_evaluated_at) VALUES ('u-1', 'new', now()), ('u-2', 'new', now())`,
      );
      await client.query(
        `INSERT INTO follows (profile_key, target_type, target_id, following, since, changed_at)
         VALUES ('u-1', 'shop', 's-1', true, now(), now())`,
      );
      const stages = async () =>
        (
          await client.query<{ value: string; n: number }>(
            `SELECT value, n FROM follower_mix WHERE target_id = 's-1' AND facet = 'stage' AND n <> 0 ORDER BY value`,
          )
        ).rows;
      expect(await stages()).toEqual([{ value: 'new', n: 1 }]);
      // Every row exists: the INSERT trigger sees no new rows and returns first, the UPDATE one counts.
      await client.query(
        `INSERT INTO people AS p (profile_key, stage, stage_evaluated_at)
         VALUES ('u-1', 'engaged', now()), ('u-2', 'engaged', now())
         ON CONFLICT (profile_key) DO UPDATE SET stage = excluded.stage`,
      );
      expect(await stages()).toEqual([{ value: 'engaged', n: 1 }]);
    } finally {
      client.release();
    }
  });
});
