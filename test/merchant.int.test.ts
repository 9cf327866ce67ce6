/**
 * The merchant page (seed 000) in headless Chromium: real data written by the segmenter's and
 * the scorer's apply steps into real Postgres and Redis, served by the query API; the page must
 * render the trend chart, the mixes and the overlap with no console error. The screenshot goes to
 * .data/artifacts/merchant.png (CI artifact) and, when missing or with UPDATE_SCREENSHOTS=1, to
 * docs/images/merchant.png.
 */
import type { TopicMessage } from '@pstream/events';
import { createInterestStore } from '@pstream/interest-store';
import { DEFAULT_RULES } from '@pstream/lifecycle';
import { createMetrics } from '@pstream/platform';
import { createConverter, createSegmentStore } from '@pstream/profile-store';
import { buildApp as buildQuery } from '@pstream/query-api/app';
import { loadConfig as queryConfig } from '@pstream/query-api/config';
import { loadConfig as scorerConfig, storeOptions } from '@pstream/scorer/config';
import { createChunkApplier } from '@pstream/scorer/processor';
import type { FastifyInstance } from 'fastify';
import { prng, silentLog } from '@pstream/testkit';
import {
  browserUnavailable,
  launchBrowser,
  openWithoutToken,
  saveScreenshot,
  watchProblems,
} from '@pstream/testkit/browser';
import { type StoreSandbox, storeSandbox } from '@pstream/testkit/services';

const DAY = 86_400_000;
const now = Date.now();
const skip = browserUnavailable();
const CITIES = ['Hangzhou', 'Shanghai', 'Beijing', 'Guangzhou', 'Chengdu', 'Wuhan'];
const TAGS = ['category:dress', 'style:casual', 'brand:acme', 'category:shoes', 'style:street'];

/** A shop's season: people follow and sometimes unfollow over 30 days, buy, and tell their traits. */
function season(seed: number): TopicMessage[] {
  const rand = prng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  const out: TopicMessage[] = [];
  let n = 0;
  const base = (daysAgo: number) => {
    const at = new Date(now - daysAgo * DAY).toISOString();
    return { v: 1 as const, eventId: `m${n++}`, source: 'test', occurredAt: at, receivedAt: at };
  };
  for (let i = 0; i < 160; i++) {
    const userId = `u-${i}`;
    const who = { userId, profileKey: userId };
    out.push({
      ...base(31),
      kind: 'identify',
      userId,
      profileKey: userId,
      traits: {
        gender: pick(['female', 'female', 'male']),
        birthYear: 1965 + Math.floor(rand() * 45),
        city: pick(CITIES),
      },
    });
    const followedAt = rand() * 29.5;
    out.push({
      ...base(followedAt),
      kind: 'event',
      type: 'follow',
      ...who,
      target: { type: 'shop', id: 's-1' },
      tags: [],
    } as TopicMessage);
    if (rand() < 0.2)
      out.push({
        ...base(followedAt * rand()),
        kind: 'event',
        type: 'unfollow',
        ...who,
        target: { type: 'shop', id: 's-1' },
        tags: [],
      } as TopicMessage);
    if (rand() < 0.4)
      out.push({
        ...base(rand() * 29),
        kind: 'event',
        type: 'follow',
        ...who,
        target: { type: 'shop', id: 's-2' },
        tags: [],
      } as TopicMessage);
    const buys = Math.floor(rand() * 4);
    for (let b = 0; b < buys; b++) {
      out.push({
        ...base(rand() * 20),
        kind: 'event',
        type: 'purchase',
        ...who,
        target: { type: 'product', id: `p-${b}` },
        tags: [pick(TAGS), pick(TAGS)],
        amount: 80 + Math.floor(rand() * 900),
        currency: 'CNY',
      } as TopicMessage);
    }
  }
  return out;
}

(skip ? describe.skip : describe)(`the merchant page in Chromium${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let stores: StoreSandbox;
  let query: FastifyInstance;
  let url: string;

  beforeAll(async () => {
    stores = await storeSandbox('test-merchant');
    const { box, pool, redis } = stores;
    const messages = season(17);
    const facts = createSegmentStore({
      pool,
      rules: DEFAULT_RULES,
      convert: createConverter('CNY', new Map()),
      log: silentLog,
    });
    await facts.apply(
      messages.map((value, i) => ({ value, offset: String(i) })),
      { groupId: 'g', topic: 't', partition: 0, lastOffset: String(messages.length - 1) },
      now,
    );
    const sCfg = scorerConfig(box.env);
    await createChunkApplier(
      createInterestStore(redis, sCfg.REDIS_PREFIX, storeOptions(sCfg)),
      redis,
      sCfg,
      silentLog,
    )(messages);
    query = await buildQuery(queryConfig(box.env), {
      log: silentLog,
      redis,
      pool,
      checks: [],
      metrics: createMetrics('query-api'),
    });
    url = await query.listen({ host: '127.0.0.1', port: 0 });
  }, 60_000);

  afterAll(async () => {
    await query?.close();
    await stores?.close();
  });

  it('renders follower trends, audience mix and the overlap with a competitor, with no console error', async () => {
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 1100 } });
      const problems = watchProblems(page);
      const external: string[] = [];
      page.on('request', (r) => {
        if (!r.url().startsWith(url) && !r.url().startsWith('data:')) external.push(r.url());
      });
      await page.goto(`${url}/merchant/shop/s-1?with=shop:s-2#token=dev-api-token`);
      await page.waitForSelector('body[data-ready]', { timeout: 20_000 });
      expect(await page.getAttribute('body', 'data-ready')).toBe('true');

      const api = (
        await query.inject({
          method: 'GET',
          url: '/v1/targets/shop/s-1/followers',
          headers: { authorization: 'Bearer dev-api-token' },
        })
      ).json();
      expect(api.followers).toBeGreaterThan(100);
      expect(await page.textContent('#followers')).toBe(String(api.followers));
      expect(await page.textContent('#follows30')).toBe(
        String(api.daily.reduce((s: number, d: { follows: number }) => s + d.follows, 0)),
      );
      // the chart is drawn: uPlot's canvas with its two series in the legend
      expect(await page.locator('#trend canvas').count()).toBe(1);
      expect(await page.locator('#trend .u-legend .u-series').count()).toBe(3);
      // bars for every mix, from the API's numbers
      expect(await page.locator('#stages .row').count()).toBe(6);
      expect(await page.locator('#cities .row').count()).toBe(api.traits.city.length);
      expect(await page.locator('#interests .row').count()).toBe(api.topInterests.length);
      expect(api.topInterests.length).toBeGreaterThan(0);
      expect(await page.textContent('#cities .row:first-child .label')).toBe(api.traits.city[0].value);
      expect(await page.locator('#overlap .row').count()).toBe(3);
      expect(await page.textContent('#jaccard')).toMatch(/^Jaccard 0\.\d{3}$/);

      await saveScreenshot(page, 'merchant.png');
      expect(problems).toEqual([]);
      expect(external).toEqual([]);

      // without a token the page says why instead of showing numbers
      expect(await openWithoutToken(browser, `${url}/merchant/shop/s-1`)).toEqual({
        ready: 'error',
        status: expect.stringContaining('QRY_UNAUTHORIZED'),
      });
    } finally {
      await browser.close();
    }
  }, 90_000);
});
