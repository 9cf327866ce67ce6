import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { REPO_ROOT } from './root';

/**
 * Headless Chromium for the browser tests: Debian's `chromium` (installed by `scripts/test.sh`)
 * driven by playwright-core, whose own browser download cannot work on our machines.
 * `CHROMIUM_PATH` overrides where it is looked for.
 */
export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Why browser tests cannot run here, or undefined when they can. */
export function browserUnavailable(): string | undefined {
  return existsSync(chromiumPath)
    ? undefined
    : `no Chromium at ${chromiumPath} (apt-get install chromium, or set CHROMIUM_PATH)`;
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
  const dir = join(REPO_ROOT, '.data', 'artifacts');
  mkdirSync(dir, { recursive: true });
  return join(dir, name);
}

/**
 * What a page of ours must never do, collected as it happens: console errors and warnings,
 * uncaught errors, failed requests. A test expects the list empty at the end.
 */
export function watchProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
  return problems;
}

/**
 * Saves a page's screenshot to .data/artifacts/<name> (CI artifact) and, when docs/images/<name>
 * is missing or UPDATE_SCREENSHOTS=1, to docs/images/<name> for the docs to show.
 */
export async function saveScreenshot(page: Page, name: string): Promise<void> {
  const shot = artifactPath(name);
  await page.screenshot({ path: shot, fullPage: true });
  const docs = join(REPO_ROOT, 'docs', 'images', name);
  if (!existsSync(docs) || process.env.UPDATE_SCREENSHOTS === '1') {
    mkdirSync(dirname(docs), { recursive: true });
    copyFileSync(shot, docs);
  }
}

/** Opens one of our pages without a token; once it has settled, what it shows: `data-ready` and the status line. */
export async function openWithoutToken(
  browser: Browser,
  url: string,
): Promise<{ ready: string | null; status: string | null }> {
  const page = await browser.newPage();
  try {
    await page.goto(url);
    await page.waitForSelector('body[data-ready]', { timeout: 20_000 });
    return { ready: await page.getAttribute('body', 'data-ready'), status: await page.textContent('#status') };
  } finally {
    await page.close();
  }
}
