import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './root';

/** Fills unset variables from .env, else .env.example — the same defaults `pnpm start` uses. */
export function loadDefaultEnv(): void {
  const root = REPO_ROOT;
  const file = [path.join(root, '.env'), path.join(root, '.env.example')].find((f) => existsSync(f));
  if (!file) return;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m && process.env[m[1]!] === undefined) process.env[m[1]!] = m[2]!;
  }
}
