/**
 * Burrow's lag evaluation rules (LinkedIn's Kafka lag monitor), pure. A partition is judged over
 * a sliding window of the group's commits on it — offset, lag at that moment, time — not by a
 * lag threshold. Rules, checked in this order once the partition has lag now and had lag at
 * every commit in the window (a window with a zero lag anywhere is OK: the consumer caught up):
 *
 * - REWIND: the committed offset went backwards between two commits of the window;
 * - STOP:   the time since the last commit is longer than the window spans (first to last commit):
 *           the consumer stopped committing;
 * - STALL:  commits keep coming but the offset never changed across the window (two commits at least);
 * - WARN:   the offset moves but the lag never decreased from one commit to the next (two at least);
 * - OK:     otherwise.
 *
 * A group (per topic) is OK when every partition is OK, WARN when the worst is WARN, and ERR when
 * any partition is REWIND, STOP or STALL.
 */

export const PARTITION_STATUSES = ['OK', 'WARN', 'STALL', 'STOP', 'REWIND'] as const;
export type PartitionStatus = (typeof PARTITION_STATUSES)[number];
export const GROUP_STATUSES = ['OK', 'WARN', 'ERR'] as const;
export type GroupStatus = (typeof GROUP_STATUSES)[number];

/** One commit in the window: the committed offset, the lag it left, and when (ms). */
export type Commit = { offset: number; lag: number; at: number };

export function partitionStatus(window: readonly Commit[], currentLag: number, nowMs: number): PartitionStatus {
  const first = window[0];
  const last = window[window.length - 1];
  if (!first || !last || currentLag <= 0 || window.some((c) => c.lag === 0)) return 'OK';
  const pairs = window.slice(1).map((c, i) => [window[i]!, c] as const);
  if (pairs.some(([a, b]) => b.offset < a.offset)) return 'REWIND';
  if (nowMs - last.at > last.at - first.at) return 'STOP';
  // Burrow judges a one-commit window too; we need two before calling it stalled or slow.
  if (pairs.length === 0) return 'OK';
  if (pairs.every(([a, b]) => b.offset === a.offset)) return 'STALL';
  if (pairs.every(([a, b]) => b.lag >= a.lag)) return 'WARN';
  return 'OK';
}

export function groupStatus(partitions: readonly PartitionStatus[]): GroupStatus {
  if (partitions.some((s) => s === 'REWIND' || s === 'STOP' || s === 'STALL')) return 'ERR';
  return partitions.includes('WARN') ? 'WARN' : 'OK';
}
