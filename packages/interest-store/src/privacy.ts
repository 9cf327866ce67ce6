import { forwardWeight, type DecayParams } from '@pstream/scoring';
import { pipelineBySlot, type Redis } from '@pstream/platform';
import { personKeyList, type Keys } from './keys';
import { readStoredInterests, readStoredTagsAtLeast } from './read';
import { writeTagIndexChanges } from './tag-index';

/**
 * Erasure in Redis (§5.7): every per-person key of `ids` and of every id linked to them here —
 * ids merged into them (their `merged` sets) and the profiles they were merged into (`alias`),
 * followed to the closure — is deleted: interests, dedupe records, visits, follow records,
 * aliases, merged sets. Returns every id whose keys were removed. Safe to repeat.
 */
export async function eraseInterests(redis: Redis, k: Keys, ids: readonly string[]): Promise<string[]> {
  const seen = new Set<string>();
  let frontier = [...new Set(ids)];
  while (frontier.length > 0) {
    for (const id of frontier) seen.add(id);
    // One command per item, grouped by Cluster node: a person's keys share one slot.
    const asks = frontier.flatMap((id) => [
      { id, merged: false },
      { id, merged: true },
    ]);
    const replies = await pipelineBySlot(
      redis,
      asks,
      (a) => k.person(a.id).alias,
      (pipeline, a) => void (a.merged ? pipeline.smembers(k.person(a.id).merged) : pipeline.get(k.person(a.id).alias)),
    );
    const next = new Set<string>();
    for (const [err, value] of replies) {
      if (err) throw err;
      const linked = value === null ? [] : Array.isArray(value) ? (value as string[]) : [value as string];
      for (const id of linked) if (!seen.has(id)) next.add(id);
    }
    frontier = [...next];
  }
  const all = [...seen];
  // They leave the per-tag interest index too (tag-index.ts), or audiences and /similar would still find them.
  const held = await readStoredInterests(redis, k, all);
  await writeTagIndexChanges(redis, k, held, new Map(all.map((id) => [id, new Map()])));
  // One UNLINK per person, of every key in the layout: the keys of one person share a hash tag (one Cluster slot).
  const unlinked = await pipelineBySlot(
    redis,
    all,
    (id) => k.person(id).alias,
    (pipeline, id) => void pipeline.unlink(...personKeyList(k.person(id))),
  );
  for (const [err] of unlinked) if (err) throw err;
  return all;
}

/**
 * For each profile, the tags whose value at `nowMs` is at least `minValue` (§5.5's top
 * interests), counted over `profileKeys`: each person's stored scores (`readStoredTagsAtLeast`, one
 * pipeline) compared with the stored (forward) form of the threshold, so no score is decayed one by one.
 */
export async function countStrongTags(
  redis: Redis,
  k: Keys,
  profileKeys: readonly string[],
  options: {
    nowMs: number;
    minValue: number;
    valueScale: number;
    decay: DecayParams;
    /** More connections to the same server to read the states over (`readStoredTagsAtLeast`). */
    connections?: readonly Redis[];
  },
): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  if (profileKeys.length === 0) return counts;
  // value = scale·tanh(score/scale) ≥ minValue  ⇔  score ≥ scale·atanh(minValue/scale)
  const minScore = options.valueScale * Math.atanh(Math.min(options.minValue / options.valueScale, 1 - 1e-12));
  const minStored = forwardWeight(minScore, options.nowMs, options.decay);
  await readStoredTagsAtLeast(
    redis,
    k,
    profileKeys,
    minStored,
    (_, tag) => counts.set(tag, (counts.get(tag) ?? 0) + 1),
    options.connections,
  );
  return counts;
}
