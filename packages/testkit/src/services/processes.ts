import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { freePort, REPO_ROOT, waitFor } from '../index';

export const SERVICE_NAMES = ['ingest', 'query-api', 'scorer', 'segmenter'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

const ROOT = REPO_ROOT;
const PORT_VAR: Record<ServiceName, string> = {
  ingest: 'INGEST',
  'query-api': 'QUERY_API',
  scorer: 'SCORER',
  segmenter: 'SEGMENTER',
};

export type ServiceProcesses = {
  /** `127.0.0.1:port` of each service. */
  addresses: Record<ServiceName, string>;
  /** The pid of each service's process. */
  pids: Record<ServiceName, number>;
  /** What each process printed, for a failure's message. */
  output(name: ServiceName): string;
  /** SIGTERM to one service; resolves with how it exited (SIGKILL after 20 s). */
  stop(name: ServiceName): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  close(): Promise<void>;
};

/**
 * The four services as `pnpm start` runs them — each its own process running its `src/main.ts`,
 * configured only by environment — on free ports of 127.0.0.1. `env` is every service's
 * environment (a sandbox's names); `only` adds variables for one service; `names` starts some of
 * them only (the others then have no address or pid). Resolves once every service answers `/healthz`.
 */
export async function startServiceProcesses(
  env: NodeJS.ProcessEnv,
  only: Partial<Record<ServiceName, NodeJS.ProcessEnv>> = {},
  names: readonly ServiceName[] = SERVICE_NAMES,
): Promise<ServiceProcesses> {
  const ports = Object.fromEntries(
    await Promise.all(SERVICE_NAMES.map(async (name) => [name, await freePort()] as const)),
  ) as Record<ServiceName, number>;
  const listen = Object.fromEntries(
    SERVICE_NAMES.flatMap((name) => [
      [`${PORT_VAR[name]}_HOST`, '127.0.0.1'],
      [`${PORT_VAR[name]}_PORT`, String(ports[name])],
    ]),
  );
  const printed = Object.fromEntries(SERVICE_NAMES.map((name) => [name, ''])) as Record<ServiceName, string>;
  type Exit = { code: number | null; signal: NodeJS.Signals | null };
  const children = new Map<ServiceName, { child: ChildProcess; exited: Promise<Exit> }>();
  const stop = async (name: ServiceName): Promise<Exit> => {
    const { child, exited } = children.get(name)!;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      // A service drains within its own deadline; past that it is killed rather than left behind.
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    }
    return exited;
  };
  const close = async () => {
    await Promise.all([...children.keys()].map(stop));
  };
  for (const name of names) {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'services', name, 'src', 'main.ts')], {
      cwd: ROOT,
      env: { ...env, ...listen, LOG_FORMAT: 'json', ...only[name] },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (d: Buffer) => (printed[name] = (printed[name] + d.toString()).slice(-20_000));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    children.set(name, {
      child,
      exited: new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal }))),
    });
  }
  try {
    await Promise.all(
      names.map((name) =>
        waitFor(
          `${name} to answer /healthz`,
          async () => {
            const { child } = children.get(name)!;
            if (child.exitCode !== null) throw new Error(`${name} exited ${child.exitCode}: ${printed[name]}`);
            return (await fetch(`http://127.0.0.1:${ports[name]}/healthz`)).ok ? true : undefined;
          },
          90_000,
          200,
        ),
      ),
    );
  } catch (err) {
    await close();
    throw err;
  }
  return {
    addresses: Object.fromEntries(names.map((name) => [name, `127.0.0.1:${ports[name]}`])) as Record<
      ServiceName,
      string
    >,
    pids: Object.fromEntries(names.map((name) => [name, children.get(name)!.child.pid!])) as Record<
      ServiceName,
      number
    >,
    output: (name) => printed[name],
    stop,
    close,
  };
}
