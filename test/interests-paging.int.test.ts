/**
 * Every tag reachable (docs/api.md §5.2): a person with 1 000 interest tags, made by events that go
 * through Kafka into the real scorer, is read page by page through `nextCursor`. Every tag comes
 * exactly once, in the order the stream gives (later event first, ties by tag), with each page's
 * scores decayed to its own `computedAt` — pages are read apart in time, so scores decay between
 * them, and the cursor does not move with them.
 */
import type { TopicMessage } from '@pstream/events';
import { loadConfig as queryConfig } from '@pstream/query-api/config';
import { consumed, produceMessages, waitFor } from '@pstream/testkit';
import { usePipeline } from '@pstream/testkit/services';

const DAY = 86_400_000;
const now = Date.now();
const EVENTS = 40;
const TAGS_PER_EVENT = 24; // + the implicit product:p-i tag: 25 a purchase, 1 000 in all
const auth = { authorization: 'Bearer dev-api-token' };
jest.setTimeout(120_000);

type Interest = { tag: string; dimension: string; score: number; value: number };
type Page = { interests: Interest[]; nextCursor: string | null; computedAt: string };

/** Purchase i (weight 4, one time per purchase) carries 24 tags of five dimensions and its product's own. */
function stream() {
  const messages: TopicMessage[] = [];
  const timeOf = new Map<string, number>();
  for (let i = 0; i < EVENTS; i++) {
    const at = now - (EVENTS - i) * 0.5 * DAY;
    const tags = Array.from({ length: TAGS_PER_EVENT }, (_, j) => `d${j % 5}:v${String(i).padStart(2, '0')}-${j}`);
    for (const t of [...tags, `product:p-${i}`]) timeOf.set(t, at);
    const iso = new Date(at).toISOString();
    messages.push({
      v: 1,
      kind: 'event',
      eventId: `p${i}`,
      source: 'test',
      occurredAt: iso,
      receivedAt: iso,
      type: 'purchase',
      userId: 'u-many',
      profileKey: 'u-many',
      target: { type: 'product', id: `p-${i}` },
      tags,
      amount: 10,
      currency: 'CNY',
    } as TopicMessage);
  }
  return { messages, timeOf };
}

describe('every interest tag reachable through nextCursor (docs/api.md §5.2)', () => {
  const env = usePipeline();
  const { messages, timeOf } = stream();
  let halfLifeMs: number;

  beforeAll(async () => {
    halfLifeMs = queryConfig(env.box.env).DECAY_HALF_LIFE_DAYS * DAY;
    await produceMessages(env.box.kafka, env.box.env.EVENTS_TOPIC!, messages);
    await consumed(env.box.kafka, env.box.env.EVENTS_TOPIC!, [env.box.env.SCORER_GROUP!]);
  });

  const read = async (query: string): Promise<Page> => {
    const res = await env.pipeline.query.inject({
      method: 'GET',
      url: `/v1/profiles/u-many/interests?${query}`,
      headers: auth,
    });
    expect(res.statusCode).toBe(200);
    return res.json();
  };

  /** All pages, each read once the clock has moved past the previous page's computedAt. */
  async function pages(query: string): Promise<Page[]> {
    const out: Page[] = [await read(query)];
    while (out.at(-1)!.nextCursor !== null) {
      const last = Date.parse(out.at(-1)!.computedAt);
      await waitFor('the clock to move on', async () => (Date.now() > last + 2 ? true : undefined));
      out.push(await read(`${query}&cursor=${out.at(-1)!.nextCursor}`));
    }
    return out;
  }

  /** The order the stream gives: later purchase first (a higher score), ties by tag, descending. */
  const expectedOrder = (keep: (tag: string) => boolean) =>
    [...timeOf.keys()].filter(keep).sort((a, b) => timeOf.get(b)! - timeOf.get(a)! || (a < b ? 1 : a > b ? -1 : 0));

  it('pages through 1 000 tags, each exactly once, with every page decayed to its own computedAt', async () => {
    expect(timeOf.size).toBe(1000);
    const got = await pages('limit=137');
    expect(got.map((p) => p.interests.length)).toEqual([137, 137, 137, 137, 137, 137, 137, 41]);
    const tags = got.flatMap((p) => p.interests.map((i) => i.tag));
    expect(new Set(tags).size).toBe(1000);
    expect(tags).toEqual(expectedOrder(() => true));
    for (const page of got) {
      const at = Date.parse(page.computedAt);
      for (const i of page.interests) {
        // one purchase of weight 4 on each tag, decayed to this page's computedAt
        expect(i.score).toBeCloseTo(4 * 2 ** (-(at - timeOf.get(i.tag)!) / halfLifeMs), 9);
        expect(i.dimension).toBe(i.tag.split(':')[0]);
      }
    }
    // the pages were read at different instants: the same tags' scores were lower on the later ones
    expect(new Set(got.map((p) => p.computedAt)).size).toBe(got.length);
  });

  it('pages through one dimension, and the default limit is 200', async () => {
    const got = await pages('dimension=d1&limit=60');
    const tags = got.flatMap((p) => p.interests.map((i) => i.tag));
    expect(tags).toEqual(expectedOrder((t) => t.startsWith('d1:')));
    expect(tags.length).toBe(200);
    expect(got.length).toBe(4);
    const first = await read('');
    expect(first.interests.length).toBe(200);
    expect(first.nextCursor).not.toBeNull();
    const all = await read('dimension=product');
    expect(all.interests.length).toBe(EVENTS);
    expect(all.nextCursor).toBeNull();
  });

  it('refuses a cursor it did not give out', async () => {
    for (const cursor of [
      'nonsense!',
      Buffer.from('[1]').toString('base64url'),
      Buffer.from('["x","y"]').toString('base64url'),
    ]) {
      const res = await env.pipeline.query.inject({
        method: 'GET',
        url: `/v1/profiles/u-many/interests?cursor=${cursor}`,
        headers: auth,
      });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('QRY_INVALID_CURSOR');
    }
  });
});
