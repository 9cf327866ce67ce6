import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

/**
 * Headless Chromium for the browser tests: Debian's `chromium` (installed by `scripts/test.sh`)
 * driven by playwright-core, whose own browser download cannot work on our machines.
 * `CHROMIUM_PATH` overrides where it is looked for.
 */
export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Why browser tests cannot run here, or undefined when they can. */
export function browserUnavailable(): string | undefined {
  return existsSync(chromiumPath) ? undefined : `no Chromium at ${chromiumPath} (apt-get install chromium, or set CHROMIUM_PATH)`;
}

/** Launches Chromium with the flags that keep it off the (closed) network and quiet. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Where tests save screenshots and other artifacts a person or CI may look at afterwards. */
export function artifactPath(name: string): string {
  const dir = join(__dirname, '..', '.data', 'artifacts');
  mkdirSync(dir, { recursive: true });
  return join(dir, name);
}
