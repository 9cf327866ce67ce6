import { createPool, createRedis, type Pool, type Redis } from '@pstream/platform';
import { migrate } from '@pstream/profile-store';
import { createSandbox, type Sandbox, silentLog } from '@pstream/testkit';
import { loadConfig } from '../src/config';
import { createModelTrainer } from '../src/models/trainer';

const HOUR = 3_600_000;

/** A trait nobody gave cannot be trained; the trainer must not try it again at every poll (each try reads everyone). */
describe('the model trainer after a run that trained nothing', () => {
  let box: Sandbox;
  let pool: Pool;
  let redis: Redis;

  beforeAll(async () => {
    box = await createSandbox(1);
    pool = createPool(process.env.DATABASE_URL!, box.env.PG_SCHEMA!, 'test-trainer');
    await migrate(pool, box.env.PG_SCHEMA!);
    // two people who allow personalization and gave no trait: fewer than two classes for either model
    await pool.query(
      `INSERT INTO people (profile_key, first_seen_at, last_active_at, stage_evaluated_at) VALUES ('u-1', now(), now(), now()), ('u-2', now(), now(), now())`,
    );
  });

  afterAll(async () => {
    await pool?.end();
    redis?.disconnect();
    await box?.cleanup();
  });

  const state = async () =>
    (
      await pool.query<{ trait: string; failed_at: Date | null; last_error: string | null }>(
        'SELECT trait, failed_at, last_error FROM trait_models ORDER BY trait',
      )
    ).rows;

  it('waits MODEL_RETRY_INTERVAL_MS before trying such a trait again unasked, and tries at once when asked', async () => {
    const config = loadConfig({ ...box.env, MODEL_RETRY_INTERVAL_MS: String(HOUR) });
    redis = createRedis(config, 'test-trainer');
    let now = Date.now();
    const trainer = createModelTrainer(config, { pool, redis, log: silentLog, now: () => now });

    expect(await trainer.runDue()).toEqual([]);
    const first = await state();
    expect(first.map((r) => r.trait)).toEqual(['ageBand', 'gender']);
    for (const r of first) {
      expect(r.last_error).toMatch(/fewer than two classes/);
      expect(r.failed_at?.getTime()).toBe(now);
    }
    // the next polls within the hour try nothing: failed_at stays the first run's
    now += HOUR - 1000;
    await trainer.runDue();
    expect((await state()).map((r) => r.failed_at?.getTime())).toEqual([now - HOUR + 1000, now - HOUR + 1000]);
    // asked for (POST /v1/models/gender/train): tried at the next poll whatever the interval
    await pool.query(`UPDATE trait_models SET requested_at = $1 WHERE trait = 'gender'`, [new Date(now)]);
    await trainer.runDue();
    expect((await state()).map((r) => r.failed_at?.getTime())).toEqual([now - HOUR + 1000, now]);
    // once the hour has passed, the other is tried again on its own
    now += 2000;
    await trainer.runDue();
    expect((await state()).map((r) => r.failed_at?.getTime())).toEqual([now, now - 2000]);
  });
});
