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
  /** What each process printed, for a failure's message. */
  output(name: ServiceName): string;
  close(): Promise<void>;
};

/**
 * The four services as `pnpm start` runs them — each its own process running its `src/main.ts`,
 * configured only by environment — on free ports of 127.0.0.1. `env` is every service's
 * environment (a sandbox's names); `only` adds variables for one service. Resolves once every
 * service answers `/healthz`.
 */
export async function startServiceProcesses(
  env: NodeJS.ProcessEnv,
  only: Partial<Record<ServiceName, NodeJS.ProcessEnv>> = {},
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
  const children = new Map<ServiceName, { child: ChildProcess; exited: Promise<unknown> }>();
  const close = async () => {
    await Promise.all(
      [...children.values()].map(async ({ child, exited }) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        // A service drains within its own deadline; past that it is killed rather than left behind.
        const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        await exited;
        clearTimeout(timer);
      }),
    );
  };
  for (const name of SERVICE_NAMES) {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'services', name, 'src', 'main.ts')], {
      cwd: ROOT,
      env: { ...env, ...listen, LOG_FORMAT: 'json', ...only[name] },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (d: Buffer) => (printed[name] = (printed[name] + d.toString()).slice(-20_000));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    children.set(name, { child, exited: new Promise((resolve) => child.on('exit', resolve)) });
  }
  try {
    await Promise.all(
      SERVICE_NAMES.map((name) =>
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
    addresses: Object.fromEntries(SERVICE_NAMES.map((name) => [name, `127.0.0.1:${ports[name]}`])) as Record<
      ServiceName,
      string
    >,
    output: (name) => printed[name],
    close,
  };
}
