import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createSandbox, type Sandbox, waitFor } from '@pstream/testkit';
import { countsOf, total, wantCounts, wave } from './waves';

const ROOT = path.resolve(__dirname, '../../..');

// Its own file: after a SIGKILL the restarted member waits for the dead one's session (30 s)
// to expire before the group rebalances, which is most of this test's time.
describe('segmenter killed with SIGKILL: nothing lost, nothing counted twice', () => {
  let box: Sandbox;

  beforeAll(async () => {
    box = await createSandbox(4);
  });
  afterAll(async () => {
    await box?.cleanup();
  });

  it('catches up exactly after a SIGKILL mid-stream and a restart', async () => {
    const schema = box.env.PG_SCHEMA!;
    const producer = box.kafka.producer();
    await producer.connect();
    const start = (): ChildProcess =>
      // node itself with tsx as a loader: one process, so SIGKILL hits the segmenter (the tsx CLI
      // would run it as a grandchild and a SIGKILL to the CLI would leave it running)
      spawn(process.execPath, ['--import', 'tsx', 'services/segmenter/src/main.ts'], {
        cwd: ROOT,
        env: {
          ...box.env,
          SEGMENTER_PORT: String(20000 + Math.floor(Math.random() * 10000)),
          SEGMENTER_HOST: '127.0.0.1',
          LOG_LEVEL: 'warn',
          LOG_FORMAT: 'json',
        },
        stdio: 'ignore',
      });
    const exited = (child: ChildProcess) => new Promise((resolve) => child.once('exit', resolve));
    try {
      await producer.send({ topic: box.env.EVENTS_TOPIC!, acks: -1, messages: wave('w1', 8000) });
      const first = start();
      await waitFor(
        'the first segmenter to apply some events',
        async () => ((await total(box.pg, schema).catch(() => 0)) > 0 ? true : undefined),
        40_000,
        10,
      );
      first.kill('SIGKILL');
      await exited(first);
      expect(first.signalCode).toBe('SIGKILL');
      const appliedAtKill = await total(box.pg, schema);
      await producer.send({ topic: box.env.EVENTS_TOPIC!, acks: -1, messages: wave('w2', 4000) });
      const second = start();
      try {
        await waitFor(
          'every event applied after the restart',
          async () => ((await total(box.pg, schema)) === 12_000 ? true : undefined),
          60_000,
        );
        expect(await countsOf(box.pg, schema)).toEqual(wantCounts([8000, 4000]));
        expect(appliedAtKill).toBeLessThan(8000); // the kill came mid-stream
      } finally {
        second.kill('SIGTERM');
        await exited(second);
      }
    } finally {
      await producer.disconnect();
    }
  }, 90_000);
});
