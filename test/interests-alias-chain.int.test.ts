/**
 * An id merged along a chain of more than MAX_ALIAS_HOPS merges (c-0 into c-1, c-1 into c-2, …):
 * the interests read answers for it what the profile shows, the interests of the person it
 * joined, and not an empty list.
 */
import { MAX_ALIAS_HOPS, type TopicMessage } from '@pstream/events';
import { consumed, produceMessages } from '@pstream/testkit';
import { usePipeline } from '@pstream/testkit/services';

const auth = { authorization: 'Bearer dev-api-token' };
const LINKS = MAX_ALIAS_HOPS + 2;
jest.setTimeout(120_000);

describe('interests of an id merged along a long chain', () => {
  const env = usePipeline();

  beforeAll(async () => {
    const now = Date.now();
    const base = (n: number) => ({
      v: 1 as const,
      eventId: `chain-${n}`,
      source: 'test',
      occurredAt: new Date(now - 60_000 + n).toISOString(),
      receivedAt: new Date(now).toISOString(),
    });
    const batches: TopicMessage[][] = [
      [
        {
          ...base(0),
          kind: 'event',
          type: 'purchase',
          userId: 'c-0',
          profileKey: 'c-0',
          target: { type: 'product', id: 'p-1' },
          tags: ['category:dress'],
          amount: 10,
          currency: 'CNY',
        } as TopicMessage,
      ],
      ...Array.from({ length: LINKS }, (_, i): TopicMessage[] => [
        {
          ...base(i + 1),
          kind: 'alias',
          previousId: `c-${i}`,
          userId: `c-${i + 1}`,
          profileKey: `c-${i + 1}`,
        } as TopicMessage,
      ]),
    ];
    // one merge at a time: each joins the person the previous one made, so the aliases form a chain
    for (const messages of batches) {
      await produceMessages(env.box.kafka, env.box.env.EVENTS_TOPIC!, messages);
      await consumed(env.box.kafka, env.box.env.EVENTS_TOPIC!, [
        env.box.env.SCORER_GROUP!,
        env.box.env.SEGMENTER_GROUP!,
      ]);
    }
  });

  const get = async (url: string) => {
    const res = await env.pipeline.query.inject({ method: 'GET', url, headers: auth });
    expect(res.statusCode).toBe(200);
    return res.json();
  };

  it(`answers the first id's interests as its profile does, ${LINKS} merges on`, async () => {
    const profile = await get('/v1/profiles/c-0');
    expect(profile.userId).toBe(`c-${LINKS}`);
    const tags = (profile.interests as { tag: string }[]).map((i) => i.tag).sort();
    expect(tags).toEqual(['category:dress', 'product:p-1']);
    for (const id of ['c-0', 'c-1', `c-${LINKS}`]) {
      const read = await get(`/v1/profiles/${id}/interests`);
      expect({ id, tags: (read.interests as { tag: string }[]).map((i) => i.tag).sort() }).toEqual({ id, tags });
    }
  });
});
