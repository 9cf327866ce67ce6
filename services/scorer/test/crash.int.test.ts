import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createPool, createRedis, type Redis } from '@pstream/platform';
import { migrate } from '@pstream/profile-store';
import { createSandbox, type Sandbox, waitFor } from '@pstream/testkit';
import { appliedCount, generateStream, produceEvents, storedScores } from '@pstream/testkit/streams';
import { loadConfig, scoringParams } from '../src/config';
import { expectSameScores, modelScores } from './support';

const root = path.resolve(__dirname, '../../..');
const DAY = 86_400_000;

/**
 * The real scorer process (`services/scorer/src/main.ts` through tsx) on the sandbox's topics and
 * prefix. Node runs it directly with tsx's loader: the `tsx` CLI would put a parent process in
 * between, and a SIGKILL of that parent leaves the scorer itself running.
 */
function startScorerProcess(env: NodeJS.ProcessEnv): ChildProcess {
  const port = 20_000 + Math.floor(Math.random() * 10_000);
  return spawn(process.execPath, ['--import', 'tsx', 'services/scorer/src/main.ts'], {
    cwd: root,
    env: { ...env, SCORER_PORT: String(port), SCORER_HOST: '127.0.0.1', LOG_LEVEL: 'warn', LOG_FORMAT: 'json' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

const exited = (child: ChildProcess) =>
  new Promise<void>((resolve) =>
    child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve()),
  );

describe('a scorer killed with SIGKILL mid-batch', () => {
  let box: Sandbox;
  let redis: Redis;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    box = await createSandbox(3);
    redis = createRedis({ REDIS_URL: process.env.REDIS_URL! }, 'test-crash');
    // the scorer reads the suppression list of erasures from the schema
    const pool = createPool(process.env.DATABASE_URL!, box.env.PG_SCHEMA!, 'test-crash', 1);
    await migrate(pool, box.env.PG_SCHEMA!);
    await pool.end();
  }, 60_000);

  afterAll(async () => {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited(child);
      }
    }
    redis.disconnect();
    await box?.cleanup();
  }, 60_000);

  it('loses and doubles nothing once restarted', async () => {
    const config = loadConfig(box.env);
    const now = Date.now();
    const { events, people } = generateStream(23, 150, now - 30 * DAY, now - 3_600_000, 200);
    const messages = await produceEvents(box.kafka, config.EVENTS_TOPIC, events);
    const unique = new Set(messages.map((m) => m.eventId)).size;

    const first = startScorerProcess(box.env);
    children.push(first);
    const atKill = await waitFor(
      'the first applied events',
      async () => {
        const n = await appliedCount(redis, config.REDIS_PREFIX, people);
        return n > 0 ? n : undefined;
      },
      60_000,
      10,
    );
    first.kill('SIGKILL');
    await exited(first);
    expect(first.signalCode).toBe('SIGKILL');
    const afterKill = await appliedCount(redis, config.REDIS_PREFIX, people);
    expect(afterKill).toBeGreaterThanOrEqual(atKill);
    expect(afterKill).toBeLessThan(unique); // killed before the end: the restart has work left

    const second = startScorerProcess(box.env);
    children.push(second);
    await waitFor(
      'every event applied',
      async () => ((await appliedCount(redis, config.REDIS_PREFIX, people)) === unique ? true : undefined),
      60_000,
    );
    second.kill('SIGTERM');
    await exited(second);

    expectSameScores(
      await storedScores(redis, config.REDIS_PREFIX, people),
      modelScores(messages, scoringParams(config)),
    );
  }, 90_000);
});
