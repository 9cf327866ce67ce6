/**
 * The demo's shopping population and its sessions (scripts/demo.ts posts them; the whole-pipeline
 * benchmark, bench/sustained.bench.ts, posts the same kind of traffic at fixed rates). Seeded: the
 * same seed and size give the same people, products and sessions in the same order.
 */

/** mulberry32: a small seeded PRNG, so the demo is repeatable. */
export function prng(s: number): () => number {
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
export type DemoEvent = Record<string, unknown>;
export type DemoPerson = {
  id: string;
  likes: DemoProduct[];
  buyRate: number;
  lastActiveDaysAgo: number;
  firstDaysAgo: number;
  sessionsPerWeek: number;
};
type DemoProduct = { id: string; shop: string; tags: string[]; price: number };

/** `peopleCount` people (one in five anonymous) and `session(person, start, idPrefix)`, all drawn from `seed`. */
export function createDemoTraffic(seed: number, peopleCount: number) {
  const rand = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const between = (lo: number, hi: number) => lo + rand() * (hi - lo);

  const CATEGORIES = [
    {
      tag: 'category:连衣裙',
      brands: ['brand:伊芙丽', 'brand:太平鸟', 'brand:acme'],
      styles: ['style:casual', 'style:vintage'],
      price: [129, 599],
    },
    { tag: 'category:口红', brands: ['brand:花西子', 'brand:完美日记'], styles: ['style:国潮'], price: [69, 299] },
    {
      tag: 'category:运动鞋',
      brands: ['brand:李宁', 'brand:安踏', 'brand:特步'],
      styles: ['style:sport'],
      price: [299, 999],
    },
    {
      tag: 'category:手机',
      brands: ['brand:小米', 'brand:华为', 'brand:oppo'],
      styles: ['style:tech'],
      price: [1299, 5999],
    },
    { tag: 'category:零食', brands: ['brand:三只松鼠', 'brand:良品铺子'], styles: ['style:gift'], price: [19, 99] },
    { tag: 'category:茶叶', brands: ['brand:八马', 'brand:大益'], styles: ['style:traditional'], price: [88, 688] },
    { tag: 'category:母婴', brands: ['brand:好孩子', 'brand:babycare'], styles: ['style:safe'], price: [59, 899] },
  ] as const;

  const shops = Array.from({ length: 24 }, (_, i) => ({
    id: `s-${100 + i}`,
    category: CATEGORIES[i % CATEGORIES.length]!,
  }));
  const products: DemoProduct[] = Array.from({ length: 240 }, (_, i) => {
    const shop = shops[i % shops.length]!;
    const c = shop.category;
    return {
      id: `p-${1000 + i}`,
      shop: shop.id,
      tags: [c.tag, pick(c.brands), pick(c.styles)],
      price: Math.round(between(c.price[0], c.price[1])),
    };
  });
  const creators = Array.from({ length: 12 }, (_, i) => ({
    id: `c-${10 + i}`,
    category: CATEGORIES[i % CATEGORIES.length]!,
  }));
  const channels = ['search', 'homepage', 'weitao', 'live', 'campaign'] as const;

  const people: DemoPerson[] = Array.from({ length: peopleCount }, (_, i) => {
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

  let counter = 0;
  const idFor = (prefix: string) => `demo-${seed}-${prefix}-${counter++}`;
  const who = (p: DemoPerson) => (p.id.startsWith('dev-') ? { anonymousId: p.id } : { userId: p.id });

  /** One shopping session: look at a few products, dwell, maybe interact, maybe buy or follow. */
  function session(p: DemoPerson, start: number, idPrefix: string): DemoEvent[] {
    const events: DemoEvent[] = [];
    let t = start;
    const context = { channel: pick(channels) };
    for (let n = 0; n < 1 + Math.floor(rand() * 4); n++) {
      const product = rand() < 0.8 ? pick(p.likes) : pick(products);
      const target = { type: 'product', id: product.id };
      const base = { ...who(p), target, tags: product.tags, context };
      events.push({ ...base, eventId: idFor(idPrefix), type: 'click', occurredAt: new Date(t).toISOString() });
      t += between(2_000, 30_000);
      events.push({
        ...base,
        eventId: idFor(idPrefix),
        type: 'dwell',
        dwellMs: Math.round(between(3_000, 120_000)),
        occurredAt: new Date(t).toISOString(),
      });
      for (const action of ['like', 'favorite', 'share', 'comment'] as const) {
        if (rand() < { like: 0.3, favorite: 0.15, share: 0.05, comment: 0.08 }[action]) {
          t += between(1_000, 20_000);
          events.push({ ...base, eventId: idFor(idPrefix), type: action, occurredAt: new Date(t).toISOString() });
        }
      }
      if (rand() < p.buyRate * 3) {
        t += between(10_000, 120_000);
        events.push({
          ...base,
          eventId: idFor(idPrefix),
          type: 'purchase',
          amount: product.price,
          currency: 'CNY',
          quantity: 1,
          occurredAt: new Date(t).toISOString(),
        });
      }
      if (rand() < 0.05) {
        const shop = shops.find((s) => s.id === product.shop)!;
        events.push({
          ...who(p),
          eventId: idFor(idPrefix),
          type: 'follow',
          target: { type: 'shop', id: shop.id },
          tags: [shop.category.tag],
          occurredAt: new Date(t).toISOString(),
        });
      }
      t += between(5_000, 60_000);
    }
    if (rand() < 0.04) {
      const creator = pick(creators);
      events.push({
        ...who(p),
        eventId: idFor(idPrefix),
        type: 'follow',
        target: { type: 'creator', id: creator.id },
        tags: [creator.category.tag],
        occurredAt: new Date(t).toISOString(),
      });
    }
    return events;
  }
  return { people, session, pick };
}
