/**
 * Demo stream: a Taobao-like shopping population posting to the ingest API, so a newcomer sees
 * real profiles. First a backfill of 160 days of history (so lifecycle stages vary: new, loyal,
 * at risk, churned…), then a live trickle until stopped.
 *
 * Deterministic: the same DEMO_SEED gives the same people and the same backfill event ids, so
 * running the demo twice does not double anything (ingest dedupes by event id).
 *
 * Env: INGEST_PORT, WRITE_KEYS (the first key is used), DEMO_SEED (default 7), DEMO_PEOPLE
 * (default 150), DEMO_LIVE_PER_SEC (default 5; 0 stops after the backfill).
 */
import { writeKeysEnv } from '@pstream/ingest/config';
import { envInt, parseEnv } from '@pstream/platform';
import { z } from 'zod';

const DAY = 86_400_000;
const port = process.env.INGEST_PORT ?? '8080';
const queryPort = process.env.QUERY_API_PORT ?? '8081';
const {
  WRITE_KEYS: writeKeys,
  DEMO_SEED: seed,
  DEMO_PEOPLE: peopleCount,
  DEMO_LIVE_PER_SEC: livePerSec,
} = parseEnv(
  z.object({
    // Read as ingest reads it; the first key is used.
    WRITE_KEYS: writeKeysEnv('dev-write-key=demo'),
    DEMO_SEED: envInt(7),
    DEMO_PEOPLE: envInt(150, 1),
    DEMO_LIVE_PER_SEC: envInt(5),
  }),
  process.env,
);
const writeKey = [...writeKeys.keys()][0]!;
const url = `http://127.0.0.1:${port}`;

/** mulberry32: a small seeded PRNG, so the demo is repeatable. */
function prng(s: number): () => number {
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = prng(seed);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const between = (lo: number, hi: number) => lo + rand() * (hi - lo);

const CATEGORIES = [
  { tag: 'category:连衣裙', brands: ['brand:伊芙丽', 'brand:太平鸟', 'brand:acme'], styles: ['style:casual', 'style:vintage'], price: [129, 599] },
  { tag: 'category:口红', brands: ['brand:花西子', 'brand:完美日记'], styles: ['style:国潮'], price: [69, 299] },
  { tag: 'category:运动鞋', brands: ['brand:李宁', 'brand:安踏', 'brand:特步'], styles: ['style:sport'], price: [299, 999] },
  { tag: 'category:手机', brands: ['brand:小米', 'brand:华为', 'brand:oppo'], styles: ['style:tech'], price: [1299, 5999] },
  { tag: 'category:零食', brands: ['brand:三只松鼠', 'brand:良品铺子'], styles: ['style:gift'], price: [19, 99] },
  { tag: 'category:茶叶', brands: ['brand:八马', 'brand:大益'], styles: ['style:traditional'], price: [88, 688] },
  { tag: 'category:母婴', brands: ['brand:好孩子', 'brand:babycare'], styles: ['style:safe'], price: [59, 899] },
] as const;

type Product = { id: string; shop: string; tags: string[]; price: number };
const shops = Array.from({ length: 24 }, (_, i) => ({ id: `s-${100 + i}`, category: CATEGORIES[i % CATEGORIES.length]! }));
const products: Product[] = Array.from({ length: 240 }, (_, i) => {
  const shop = shops[i % shops.length]!;
  const c = shop.category;
  return { id: `p-${1000 + i}`, shop: shop.id, tags: [c.tag, pick(c.brands), pick(c.styles)], price: Math.round(between(c.price[0], c.price[1])) };
});
const creators = Array.from({ length: 12 }, (_, i) => ({ id: `c-${10 + i}`, category: CATEGORIES[i % CATEGORIES.length]! }));
const channels = ['search', 'homepage', 'weitao', 'live', 'campaign'] as const;

type Person = { id: string; likes: Product[]; buyRate: number; lastActiveDaysAgo: number; firstDaysAgo: number; sessionsPerWeek: number };
const people: Person[] = Array.from({ length: peopleCount }, (_, i) => {
  const favorite = CATEGORIES[Math.floor(rand() * CATEGORIES.length)]!;
  const r = rand();
  // a mix of recency: most active now, some drifting (30-90 days), some gone (>90 days)
  const lastActiveDaysAgo = r < 0.6 ? between(0, 5) : r < 0.8 ? between(31, 85) : between(95, 140);
  return {
    id: i % 5 === 4 ? `dev-${(i * 7919).toString(16)}` : `u-${String(i + 1).padStart(4, '0')}`,
    likes: products.filter((p) => p.tags[0] === favorite.tag),
    buyRate: pick([0, 0.02, 0.08, 0.2]),
    lastActiveDaysAgo,
    firstDaysAgo: Math.min(160, lastActiveDaysAgo + between(5, 120)),
    sessionsPerWeek: between(0.5, 6),
  };
});

type Event = Record<string, unknown>;
let counter = 0;
const idFor = (prefix: string) => `demo-${seed}-${prefix}-${counter++}`;
const who = (p: Person) => (p.id.startsWith('dev-') ? { anonymousId: p.id } : { userId: p.id });

/** One shopping session: look at a few products, dwell, maybe interact, maybe buy or follow. */
function session(p: Person, start: number, idPrefix: string): Event[] {
  const events: Event[] = [];
  let t = start;
  const context = { channel: pick(channels) };
  for (let n = 0; n < 1 + Math.floor(rand() * 4); n++) {
    const product = rand() < 0.8 ? pick(p.likes) : pick(products);
    const target = { type: 'product', id: product.id };
    const base = { ...who(p), target, tags: product.tags, context };
    events.push({ ...base, eventId: idFor(idPrefix), type: 'click', occurredAt: new Date(t).toISOString() });
    t += between(2_000, 30_000);
    events.push({ ...base, eventId: idFor(idPrefix), type: 'dwell', dwellMs: Math.round(between(3_000, 120_000)), occurredAt: new Date(t).toISOString() });
    for (const action of ['like', 'favorite', 'share', 'comment'] as const) {
      if (rand() < { like: 0.3, favorite: 0.15, share: 0.05, comment: 0.08 }[action]) {
        t += between(1_000, 20_000);
        events.push({ ...base, eventId: idFor(idPrefix), type: action, occurredAt: new Date(t).toISOString() });
      }
    }
    if (rand() < p.buyRate * 3) {
      t += between(10_000, 120_000);
      events.push({ ...base, eventId: idFor(idPrefix), type: 'purchase', amount: product.price, currency: 'CNY', quantity: 1, occurredAt: new Date(t).toISOString() });
    }
    if (rand() < 0.05) {
      const shop = shops.find((s) => s.id === product.shop)!;
      events.push({ ...who(p), eventId: idFor(idPrefix), type: 'follow', target: { type: 'shop', id: shop.id }, tags: [shop.category.tag], occurredAt: new Date(t).toISOString() });
    }
    t += between(5_000, 60_000);
  }
  if (rand() < 0.04) {
    const creator = pick(creators);
    events.push({ ...who(p), eventId: idFor(idPrefix), type: 'follow', target: { type: 'creator', id: creator.id }, tags: [creator.category.tag], occurredAt: new Date(t).toISOString() });
  }
  return events;
}

async function post(events: Event[]): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(`${url}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-write-key': writeKey },
      body: JSON.stringify({ events }),
    });
    if (res.status === 202) {
      const body = (await res.json()) as { rejected: unknown[] };
      if (body.rejected.length > 0) console.warn(`demo: ${body.rejected.length} events rejected: ${JSON.stringify(body.rejected[0])}`);
      return;
    }
    if ((res.status === 503 || res.status === 429) && attempt < 10) {
      await new Promise((r) => setTimeout(r, 1000));
      continue;
    }
    throw new Error(`ingest answered ${res.status}: ${await res.text()}`);
  }
}

async function waitForIngest(): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`ingest at ${url} did not become ready within 60 s`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function main(): Promise<void> {
  await waitForIngest();
  const now = Date.now();
  const history: Event[] = [];
  for (const p of people) {
    const from = now - p.firstDaysAgo * DAY;
    const to = now - p.lastActiveDaysAgo * DAY;
    for (let t = from; t <= to; t += (7 * DAY) / p.sessionsPerWeek) history.push(...session(p, Math.min(t, to), 'h'));
  }
  // ingest refuses events >24 h ahead; a session started "now" can run a few minutes ahead, so clamp
  for (const e of history) if (Date.parse(e.occurredAt as string) > now) e.occurredAt = new Date(now).toISOString();
  console.log(`demo: backfilling ${history.length} events for ${people.length} people over the last 160 days…`);
  for (let i = 0; i < history.length; i += 100) {
    await post(history.slice(i, i + 100));
    if ((i / 100) % 20 === 0) console.log(`demo: backfill ${Math.min(i + 100, history.length)}/${history.length}`);
  }
  console.log(`demo: backfill done. Try: curl -s -H 'Authorization: Bearer dev-api-token' http://127.0.0.1:${queryPort}/v1/profiles/u-0001`);
  if (livePerSec <= 0) return;
  console.log(`demo: live stream at ~${livePerSec} sessions/s (DEMO_LIVE_PER_SEC); Ctrl-C stops`);
  const live = people.filter((p) => p.lastActiveDaysAgo < 10);
  let sent = 0;
  const timer = setInterval(() => {
    const batch = Array.from({ length: livePerSec }, () => session(pick(live), Date.now() - 60_000, `live${Date.now()}`)).flat();
    for (const e of batch) if (Date.parse(e.occurredAt as string) > Date.now()) e.occurredAt = new Date().toISOString();
    post(batch).then(
      () => {
        sent += batch.length;
        if (sent % 500 < batch.length) console.log(`demo: ${sent} live events sent`);
      },
      (err: unknown) => console.error(`demo: ${(err as Error).message}`),
    );
  }, 1000);
  const stop = () => {
    clearInterval(timer);
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error(`demo: ${(err as Error).message}`);
  process.exit(1);
});
