import { createReadStream, existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { createSandbox, readTopic, type Sandbox } from '@pstream/testkit';
import { artifactPath, browserUnavailable, launchBrowser } from '@pstream/testkit/browser';
import { startPipeline } from '@pstream/testkit/services';

/** analytics.js (`@segment/analytics-next`) as the browser loads it: its UMD build from node_modules, no CDN. */
const UMD = path.dirname(require.resolve('@segment/analytics-next/dist/umd/index.js'));

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>pstream test shop</title><script src="/index.js"></script></head>
<body><h1>pstream test shop</h1><p>analytics.js posting to ingest on another origin</p><ol id="log"></ol></body></html>`;

/**
 * The shop's own web server: serves the test page and analytics.js' browser bundle (and its lazily
 * loaded chunks, under the path the library asks its "CDN" for) on an origin other than ingest's.
 */
function startShop(): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0]!;
    if (url === '/') return void res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
    const file = path.join(UMD, path.basename(url));
    if (
      (url === '/index.js' || url.startsWith('/analytics-next/bundles/')) &&
      file.endsWith('.js') &&
      existsSync(file)
    ) {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      return void createReadStream(file).pipe(res);
    }
    res.writeHead(404).end();
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, origin: `http://127.0.0.1:${(server.address() as { port: number }).port}` }),
    ),
  );
}

const unavailable = browserUnavailable();
if (unavailable) console.warn(`analytics-next browser test skipped: ${unavailable}`);

(unavailable ? describe.skip : describe)(
  'analytics.js (@segment/analytics-next) in headless Chromium, on a page of another origin',
  () => {
    jest.setTimeout(120_000);
    let box: Sandbox;
    let shop: Awaited<ReturnType<typeof startShop>>;
    let pipeline: Awaited<ReturnType<typeof startPipeline>>;
    let browser: Browser;

    beforeAll(async () => {
      box = await createSandbox();
      shop = await startShop();
      // The shop's origin is allowed for its own write key only.
      pipeline = await startPipeline(box, { CORS_ORIGINS_BY_KEY: `test-key=${shop.origin}` });
      browser = await launchBrowser();
    });

    afterAll(async () => {
      await browser?.close();
      await pipeline?.close();
      await new Promise((resolve) => (shop ? shop.server.close(resolve) : resolve(undefined)));
      await box?.cleanup();
    });

    /**
     * The shop's page in a fresh browser context, watched: console errors, page errors and any request
     * outside the two local origins (a CDN) are `problems`; each answer from ingest is noted as
     * "METHOD path auth status".
     */
    async function openShop() {
      const context = await browser.newContext();
      const page = await context.newPage();
      const problems: string[] = [];
      const answers: string[] = [];
      page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
      page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
      page.on('response', (res) => {
        if (!res.url().startsWith(pipeline.url)) return;
        const auth = res.request().headers().authorization === undefined ? 'no-auth' : 'basic-auth';
        answers.push(`${res.request().method()} ${new URL(res.url()).pathname} ${auth} ${res.status()}`);
      });
      await page.route('**/*', (route) => {
        const url = route.request().url();
        if (url.startsWith(shop.origin) || url.startsWith(pipeline.url)) return route.continue();
        problems.push(`outside request: ${url}`);
        return route.abort();
      });
      await page.goto(shop.origin);
      return { page, problems, answers, close: () => context.close() };
    }

    it('identifies, tracks and pages through CORS, every call answered 2xx, and the profile changes', async () => {
      const { page, problems, answers, close } = await openShop();

      const result = await page.evaluate(
        async ({ ingest, cdn }) => {
          // The page's globals (the project compiles without the DOM library).
          const page = globalThis as unknown as {
            document: { getElementById(id: string): { insertAdjacentHTML(where: string, html: string): void } };
            AnalyticsNext: typeof import('@segment/analytics-next');
          };
          const log = (line: string) =>
            page.document.getElementById('log').insertAdjacentHTML('beforeend', `<li>${line}</li>`);
          const { AnalyticsBrowser } = page.AnalyticsNext;
          const host = ingest.replace(/^http:\/\//, '');
          // Settings given inline (what the CDN would serve): deliver to ingest instead of Segment.
          const [analytics] = await AnalyticsBrowser.load(
            {
              writeKey: 'test-key',
              cdnURL: cdn,
              cdnSettings: {
                integrations: { 'Segment.io': { apiKey: 'test-key', apiHost: `${host}/v1`, protocol: 'http' } },
              },
            },
            { disableClientPersistence: true },
          );
          const failed: string[] = [];
          const send = async (what: string, call: Promise<{ failedDelivery(): unknown }>) => {
            const ctx = await call;
            if (ctx.failedDelivery()) failed.push(what);
            log(`${what}: ${ctx.failedDelivery() ? 'failed' : 'delivered'}`);
          };
          await send('page (anonymous, names nothing)', analytics.page());
          await send('identify', analytics.identify('br-u1', { email: 'b@example.org', address: { city: 'Suzhou' } }));
          await send(
            'track Product Viewed',
            analytics.track('Product Viewed', { product_id: 'p-7', category: 'dress', brand: 'acme' }),
          );
          await send(
            'page naming a product',
            analytics.page('Product', 'Red dress', { product_id: 'p-8', tags: ['style:casual'] }),
          );
          await send('group', analytics.group('org-1', { plan: 'pro' }));
          await send('track Checkout Started (unmapped)', analytics.track('Checkout Started', { order_id: 'o-1' }));
          // Classic analytics.js style: a simple text/plain post (no preflight), the write key in the body only.
          const plain = await fetch(`${ingest}/v1/t`, {
            method: 'POST',
            headers: { 'Content-Type': 'text/plain' },
            body: JSON.stringify({
              writeKey: 'test-key',
              type: 'track',
              event: 'Product Clicked',
              userId: 'br-u1',
              messageId: 'plain-1',
              properties: { product_id: 'p-9' },
              sentAt: new Date().toISOString(),
            }),
          });
          log(`plain fetch: ${plain.status}`);
          return {
            failed,
            anonymousId: analytics.user().anonymousId(),
            plain: { status: plain.status, body: await plain.json() },
          };
        },
        { ingest: pipeline.url, cdn: shop.origin },
      );
      await page.screenshot({ path: artifactPath('ingest-analytics-next.png') });
      await close();

      expect(problems).toEqual([]);
      expect(result.failed).toEqual([]);
      expect(result.plain).toEqual({ status: 202, body: { accepted: 1, rejected: [] } });
      // analytics.js sends its key as Basic auth (and in the body): a request a browser only sends
      // cross-origin after a preflight that passed. The last one is the plain fetch, key in the body only.
      expect(answers).toEqual([
        ...['/v1/p', '/v1/i', '/v1/t', '/v1/p', '/v1/g', '/v1/t'].map((p) => `POST ${p} basic-auth 202`),
        'POST /v1/t no-auth 202',
      ]);

      const onTopic = await readTopic<Record<string, unknown>>(box.kafka, box.env.EVENTS_TOPIC!, (v) => v.length >= 4);
      expect(onTopic.find((m) => m.kind === 'identify')).toMatchObject({
        userId: 'br-u1',
        anonymousId: result.anonymousId,
        traits: { email: 'b@example.org', city: 'Suzhou' },
      });

      const profile = await pipeline.profile(
        'br-u1',
        (p) =>
          ['product:p-7', 'product:p-8', 'product:p-9'].every((t) => p.interests.some((i) => i.tag === t)) &&
          p.traits.city === 'Suzhou' &&
          p.stats?.events.click === 3,
      );
      expect(profile.anonymousIds).toContain(result.anonymousId);
      expect(profile.interests.map((i) => i.tag)).toEqual(
        expect.arrayContaining(['category:dress', 'brand:acme', 'style:casual']),
      );
      expect(profile.stats?.events).toMatchObject({ click: 3 });
    });

    it('delivers through analytics.js batching (/v1/b), and the profile changes', async () => {
      const { page, problems, answers, close } = await openShop();
      const flushed = page.waitForResponse((res) => res.url() === `${pipeline.url}/v1/b`);
      await page.evaluate(
        async ({ ingest, cdn }) => {
          const { AnalyticsBrowser } = (
            globalThis as unknown as { AnalyticsNext: typeof import('@segment/analytics-next') }
          ).AnalyticsNext;
          const settings = {
            apiKey: 'test-key',
            apiHost: `${ingest.replace(/^http:\/\//, '')}/v1`,
            protocol: 'http',
            deliveryStrategy: { strategy: 'batching', config: { size: 3, timeout: 60_000 } },
          };
          const [analytics] = await AnalyticsBrowser.load(
            { writeKey: 'test-key', cdnURL: cdn, cdnSettings: { integrations: { 'Segment.io': settings } } },
            { disableClientPersistence: true },
          );
          // Three calls fill the batch (size 3): one POST carries them all.
          await analytics.identify('br-u2', { address: { city: 'Ningbo' } });
          await analytics.track('Product Added to Wishlist', { product_id: 'p-21' });
          await analytics.page('Product', 'Shoes', { product_id: 'p-22' });
        },
        { ingest: pipeline.url, cdn: shop.origin },
      );
      const response = await flushed;
      expect([response.status(), await response.json()]).toEqual([202, { accepted: 3, rejected: [] }]);
      await close();
      expect(problems).toEqual([]);
      expect(answers).toEqual(['POST /v1/b basic-auth 202']);

      const profile = await pipeline.profile(
        'br-u2',
        (p) =>
          ['product:p-21', 'product:p-22'].every((t) => p.interests.some((i) => i.tag === t)) &&
          p.traits.city === 'Ningbo' &&
          p.stats?.events.favorite === 1 &&
          p.stats.events.click === 1,
      );
      expect(profile.stats?.events).toMatchObject({ favorite: 1, click: 1 });
    });
  },
);
