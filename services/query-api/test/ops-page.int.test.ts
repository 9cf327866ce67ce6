import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { BatchConsumer, createMetrics } from '@pstream/platform';
import type { FastifyInstance } from 'fastify';
import type { Producer } from 'kafkajs';
import { z } from 'zod';
import { createSandbox, type Sandbox, silentLog, waitFor } from '@pstream/testkit';
import { artifactPath, browserUnavailable, launchBrowser } from '@pstream/testkit/browser';
import type { LagSampler } from '../src/lag/sampler';
import { kafkaClients, startOpsApp, type OpsRig } from './ops-support';

const skip = browserUnavailable();
const describeBrowser = skip ? describe.skip : describe;
if (skip) console.warn(`ops page browser test skipped: ${skip}`);

/*
 * The /ops page in headless Chromium against a real broker: one healthy group keeps up with a
 * live stream (a few messages a second, some of them unusable, so the DLQ has a rate); another
 * committed once and stopped while events keep arriving. The page must load without console
 * errors and show the stopped group; the screenshot goes to .data/artifacts/ops.png, and to
 * docs/images/ops.png for the README when that is missing or UPDATE_SCREENSHOTS=1 (so an ordinary
 * test run leaves the working tree clean).
 */
describeBrowser('the /ops page', () => {
  let box: Sandbox;
  let producer: Producer;
  let healthy: BatchConsumer<z.ZodType>;
  let sampler: LagSampler;
  let app: FastifyInstance;
  let rig: OpsRig;
  let stream: NodeJS.Timeout | undefined;
  let topic: string;
  const group = (name: string) => `test-${box.id}-${name}`;

  beforeAll(async () => {
    box = await createSandbox(3);
    topic = box.env.EVENTS_TOPIC!;
    const clients = await kafkaClients(box);
    producer = clients.producer;
    let n = 0;
    const tick = () => {
      const messages = Array.from({ length: 6 }, () => ({
        key: `u-${n % 17}`,
        value: n++ % 20 === 0 ? 'not json' : JSON.stringify({ n }),
      }));
      void producer.send({ topic, messages }).catch(() => undefined);
    };
    tick();
    stream = setInterval(tick, 200);

    // committed once (everything so far), then gone while the stream goes on
    const stopped = box.kafka.consumer({ groupId: group('stopped') });
    await stopped.connect();
    await stopped.subscribe({ topic, fromBeginning: true });
    let seen = 0;
    await stopped.run({ eachMessage: async () => void (seen += 1) });
    await waitFor('the stopped group to read its first messages', async () => (seen >= 6 ? true : undefined));
    await stopped.disconnect();

    const metrics = createMetrics('query-api');
    healthy = new BatchConsumer({
      kafka: box.kafka,
      log: silentLog,
      groupId: group('healthy'),
      topic,
      dlqTopic: box.env.DLQ_TOPIC!,
      schema: z.object({ n: z.number() }),
      apply: async () => undefined,
      metrics,
    });
    await healthy.start();
    rig = await startOpsApp(
      box,
      clients,
      { groups: [group('healthy'), group('stopped')], intervalMs: 500, window: 6 },
      metrics,
    );
    ({ sampler, app } = rig);
    await app.listen({ host: '127.0.0.1', port: 0 });
  }, 90_000);

  afterAll(async () => {
    clearInterval(stream);
    await healthy?.stop();
    await rig?.close();
    await box?.cleanup();
  }, 60_000);

  it('loads without console errors, charts the groups and shows the stopped one', async () => {
    // Enough history for the charts to draw lines: the stopped group flagged and a dozen points.
    await waitFor(
      'the stopped group flagged and a few seconds of history',
      async () => {
        const g = sampler.latest()?.groups.find((x) => x.group === group('stopped'));
        const points = sampler.recent().groups[0]?.points.length ?? 0;
        return g?.status === 'ERR' && points >= 12 ? true : undefined;
      },
      60_000,
    );
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 1100 } });
      const errors: string[] = [];
      page.on('console', (msg) => {
        if (msg.type() === 'error') errors.push(msg.text());
      });
      page.on('pageerror', (err) => errors.push(err.message));
      const { port } = app.server.address() as { port: number };
      await page.goto(`http://127.0.0.1:${port}/ops#token=dev-api-token`);
      const row = page.locator('#groups tr', { hasText: group('stopped') });
      await row.waitFor({ timeout: 20_000 });
      await page.locator('#groups tr', { hasText: group('healthy') }).waitFor({ timeout: 20_000 });
      expect(await row.locator('.status').first().textContent()).toBe('ERR');
      expect(await row.textContent()).toMatch(/STOP/);
      expect(Number(await page.locator('#stalled').textContent())).toBeGreaterThan(0);
      expect(await page.locator('#lag-chart canvas').count()).toBe(1);
      expect(await page.locator('#rate-chart canvas').count()).toBe(1);
      expect(await page.locator('#dlq-chart canvas').count()).toBe(1);
      const shot = artifactPath('ops.png');
      await page.screenshot({ path: shot, fullPage: true });
      const docs = join(__dirname, '..', '..', '..', 'docs', 'images');
      if (process.env.UPDATE_SCREENSHOTS === '1' || !existsSync(join(docs, 'ops.png'))) {
        mkdirSync(docs, { recursive: true });
        copyFileSync(shot, join(docs, 'ops.png'));
      }
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 120_000);
});
