import { createInterestStore } from '@pstream/interest-store';
import type { Logger, Pool, Redis } from '@pstream/platform';
import type { Kafka } from 'kafkajs';
import { storeOptions, type ScorerConfig } from './config';
import { createScorerConsumer } from './processor';

export type RebuildProgress = { done: number; total: number; partitions: number };

/**
 * Rebuilds the scorer's Redis state from Kafka (docs/operations.md §6: Redis is derived state):
 * 1. capture the events topic's end offsets — the rebuild replays up to there;
 * 2. remove every per-person key of REDIS_PREFIX (interests, visits, follows, dedupe records,
 *    aliases; catalog entries are input, not derived, and stay);
 * 3. replay the topic from the beginning through the normal scorer pipeline in a temporary
 *    consumer group, reporting progress, until that group's committed offsets reach the ends;
 * 4. delete the temporary group.
 * Run it with the scorers stopped; started again afterwards, they continue from their own
 * committed offsets, and events the rebuild already applied are duplicates to them.
 */
export async function rebuild(
  config: ScorerConfig,
  deps: { kafka: Kafka; redis: Redis; pool: Pool; log: Logger },
  onProgress: (p: RebuildProgress) => void = () => undefined,
  pollMs = 500,
): Promise<RebuildProgress> {
  const topic = config.EVENTS_TOPIC;
  const admin = deps.kafka.admin();
  await admin.connect();
  try {
    const ends = await admin.fetchTopicOffsets(topic);
    const total = ends.reduce((s, p) => s + Number(p.high) - Number(p.low), 0);
    const trimmed = ends.filter((p) => Number(p.low) > 0).map((p) => p.partition);
    if (trimmed.length > 0) {
      // Events already deleted by retention cannot be replayed: the rebuilt scores will lack them.
      deps.log.warn(
        { topic, partitions: trimmed },
        'rebuild: the topic no longer starts at offset 0; older events are gone and will be missing from the rebuilt scores (create it with retention.ms=-1, as infra:up does)',
      );
    }
    const removed = await createInterestStore(deps.redis, config.REDIS_PREFIX, storeOptions(config)).clear();
    deps.log.info({ topic, total, removed }, 'rebuild: state cleared, replaying');

    const groupId = `${config.SCORER_GROUP}-rebuild-${Date.now()}`;
    const consumer = createScorerConsumer(config, deps, { groupId });
    const progress = async (): Promise<RebuildProgress> => {
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
      const at = new Map((committed?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
      let done = 0;
      for (const p of ends) {
        const c = at.get(p.partition) ?? -1;
        done += Math.max(0, Math.min(c, Number(p.high)) - Number(p.low));
      }
      return { done, total, partitions: ends.length };
    };
    await consumer.start();
    try {
      for (;;) {
        const p = await progress();
        onProgress(p);
        if (p.done >= total) return p;
        await new Promise((r) => setTimeout(r, pollMs));
      }
    } finally {
      await consumer.stop();
      await admin
        .deleteGroups([groupId])
        .catch((err: unknown) => deps.log.warn({ err, groupId }, 'rebuild: temporary group not deleted'));
    }
  } finally {
    await admin.disconnect();
  }
}

/** A progress bar on a terminal, a line every few seconds otherwise. */
export function progressPrinter(out: NodeJS.WriteStream = process.stderr): (p: RebuildProgress) => void {
  let lastLine = 0;
  return ({ done, total }) => {
    const pct = total === 0 ? 100 : Math.floor((100 * done) / total);
    if (out.isTTY) {
      const width = 30;
      const filled = Math.round((width * pct) / 100);
      out.write(
        `\rrebuild [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct}% ${done}/${total} events${done >= total ? '\n' : ''}`,
      );
    } else if (Date.now() - lastLine > 2000 || done >= total) {
      lastLine = Date.now();
      out.write(`rebuild ${pct}% ${done}/${total} events\n`);
    }
  };
}
