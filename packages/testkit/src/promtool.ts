import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './root';

/**
 * Prometheus' `promtool` for the metrics and alert-rule tests: `$PROMTOOL`, else the copy
 * `scripts/test.sh` unpacks from Debian's prometheus package into .data/tools.
 */
export const promtoolPath =
  process.env.PROMTOOL ?? join(REPO_ROOT, '.data', 'tools', 'prometheus', 'usr', 'bin', 'promtool');

/** Why promtool tests cannot run here, or undefined when they can. */
export function promtoolUnavailable(): string | undefined {
  return existsSync(promtoolPath)
    ? undefined
    : `no promtool at ${promtoolPath} (run \`pnpm test\`, which fetches it, or set PROMTOOL)`;
}

/** Prometheus itself, from the same Debian package: `$PROMETHEUS`, else the copy beside promtool. */
export const prometheusPath =
  process.env.PROMETHEUS ?? join(REPO_ROOT, '.data', 'tools', 'prometheus', 'usr', 'bin', 'prometheus');

/** Why a real Prometheus cannot run here, or undefined when it can. */
export function prometheusUnavailable(): string | undefined {
  return existsSync(prometheusPath)
    ? undefined
    : `no prometheus at ${prometheusPath} (run \`pnpm test\`, which fetches Debian's prometheus package, or set PROMETHEUS)`;
}

/** Runs promtool with `args` (and `stdin`), resolving with its exit code and everything it printed. */
export function promtool(args: string[], stdin?: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(promtoolPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, output }));
    child.stdin.end(stdin ?? '');
  });
}

/** The value of the first sample of `name` in a Prometheus text carrying every one of `labels`. */
export function metricSample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
      return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}
