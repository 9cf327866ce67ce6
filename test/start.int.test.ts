import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createSandbox, freePort, type Sandbox, waitFor } from '@pstream/testkit';

/*
 * `npm start` stops what it started (README "Two commands"): Ctrl-C — SIGINT to the whole
 * foreground process group, as a terminal sends it — ends the services and the Kafka broker this
 * run started, also when Ctrl-C is pressed again while it is stopping; a broker that was already
 * running is left up, and the run says so and how to stop it. Each run gets its own broker ports,
 * service ports and runtime dir (PSTREAM_DATA_DIR), and reuses the machine's Postgres and Redis.
 */

const ROOT = path.resolve(__dirname, '..');

const answers = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

type Run = { child: ChildProcess; output: () => string; exited: Promise<number | null> };

describe('npm start and Ctrl-C', () => {
  jest.setTimeout(240_000);
  let box: Sandbox;
  let dataDir: string;
  let env: NodeJS.ProcessEnv;
  let ports: { kafka: number; services: number[] };
  const runs: Run[] = [];

  const brokerPidFile = () => path.join(dataDir, 'kafka/main/broker.pid');
  const marker = () => path.join(dataDir, 'infra/kafka.started');
  const infra = (cmd: string) =>
    new Promise<string>((resolve, reject) => {
      const p = spawn('bash', ['scripts/infra.sh', cmd], { cwd: ROOT, env });
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      p.stderr.on('data', (d) => (out += d));
      p.on('close', (code) =>
        code === 0 ? resolve(out) : reject(new Error(`infra.sh ${cmd} exited ${code}: ${out}`)),
      );
    });

  /** `npm start` in its own session and process group, like a terminal's foreground job. */
  async function start(): Promise<Run> {
    const child = spawn('npm', ['start'], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const run = { child, output: () => out, exited };
    runs.push(run);
    // up = every service answers its port (the broker and topics come first)
    await waitFor(
      'the services of npm start',
      async () => ((await Promise.all(ports.services.map(answers))).every(Boolean) ? true : undefined),
      180_000,
      500,
    );
    return run;
  }
  const ctrlC = (run: Run) => process.kill(-run.child.pid!, 'SIGINT');
  /** Nothing of the run's process group is left. */
  const groupGone = (run: Run) => !alive(-run.child.pid!);

  beforeAll(async () => {
    box = await createSandbox(1);
    dataDir = await mkdtemp(path.join(tmpdir(), 'pstream-start-'));
    const [kafka, controller, ...services] = await Promise.all(Array.from({ length: 6 }, freePort));
    ports = { kafka: kafka!, services };
    env = {
      ...box.env,
      PSTREAM_DATA_DIR: dataDir,
      KAFKA_BROKERS: `127.0.0.1:${kafka}`,
      KAFKA_CONTROLLER_PORT: String(controller),
      KAFKA_HEAP_OPTS: '-Xmx256m -Xms128m',
      EVENTS_PARTITIONS: '1',
      INGEST_PORT: String(services[0]),
      QUERY_API_PORT: String(services[1]),
      SCORER_PORT: String(services[2]),
      SEGMENTER_PORT: String(services[3]),
      DEMO: 'false',
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'warn',
      npm_config_update_notifier: 'false',
    };
  });

  afterAll(async () => {
    for (const run of runs) if (!groupGone(run)) process.kill(-run.child.pid!, 'SIGKILL');
    await infra('down').catch(() => undefined);
    await rm(dataDir, { recursive: true, force: true });
    await box?.cleanup();
  });

  it('stops the services and the broker it started before npm exits', async () => {
    const run = await start();
    const broker = Number(readFileSync(brokerPidFile(), 'utf8'));
    expect(alive(broker)).toBe(true);
    ctrlC(run);
    await run.exited;
    expect(alive(broker)).toBe(false);
    expect(await answers(ports.kafka)).toBe(false);
    expect(existsSync(marker())).toBe(false);
    expect(run.output()).toContain('stopping what this run started: kafka');
    await waitFor('every process of the run to end', async () => (groupGone(run) ? true : undefined), 30_000);
    for (const port of ports.services) expect(await answers(port)).toBe(false);
  });

  it('still stops the broker when Ctrl-C is pressed again while it stops', async () => {
    const run = await start();
    const broker = Number(readFileSync(brokerPidFile(), 'utf8'));
    ctrlC(run);
    await waitFor(
      'the stop to begin',
      async () => (/stopping what this run started|shutting down/.test(run.output()) ? true : undefined),
      60_000,
      20,
    );
    ctrlC(run);
    await waitFor('the broker to stop', async () => (!alive(broker) && groupGone(run) ? true : undefined), 90_000, 200);
    expect(await answers(ports.kafka)).toBe(false);
    expect(existsSync(marker())).toBe(false);
  });

  it('leaves a broker that was running before it, and says how to stop it', async () => {
    await infra('up');
    const broker = Number(readFileSync(brokerPidFile(), 'utf8'));
    const run = await start();
    ctrlC(run);
    await run.exited;
    await waitFor('every process of the run to end', async () => (groupGone(run) ? true : undefined), 30_000);
    expect(alive(broker)).toBe(true);
    expect(run.output()).toContain(
      'kafka was running before this run (started by an earlier infra:up) and stays up; pnpm infra:down stops it',
    );
    await infra('down');
    expect(alive(broker)).toBe(false);
  });
});
