import { gauge, counter, type Logger, type Registry } from '@pstream/platform';
import { AssignerProtocol, type Admin, type Kafka } from 'kafkajs';
import { groupStatus, partitionStatus, type Commit, type GroupStatus, type PartitionStatus } from './burrow';

export type PartitionLag = {
  partition: number;
  committed: number | null;
  end: number;
  lag: number | null;
  status: PartitionStatus;
};
export type GroupLag = { group: string; topic: string; status: GroupStatus; lag: number; partitions: PartitionLag[] };
/** docs/api.md §5.8 `GET /ops/lag`. */
export type LagSnapshot = { groups: GroupLag[]; at: string };

/** One point of a group's history, for the ops page. */
export type HistoryPoint = { at: number; lag: number; eventsPerSec: number; stalled: number };
export type LagHistory = {
  groups: { group: string; topic: string; points: HistoryPoint[] }[];
  dlq: { at: number; perSec: number }[];
  at: string;
};

export type LagSamplerOptions = {
  kafka: Kafka;
  log: Logger;
  /** Groups to watch; `*` watches every consumer group of the cluster. */
  groups: readonly string[];
  dlqTopic: string;
  intervalMs: number;
  /** Commits kept per partition for Burrow's rules. */
  window: number;
  /** How much history the ops page gets. */
  historyMs?: number;
  metrics?: Registry;
  now?: () => number;
};

type PartitionState = { commits: Commit[]; lastOffset: number | undefined };

const key = (group: string, topic: string) => `${group}\u0000${topic}`;

/**
 * Samples consumer lag from Kafka's admin API every `intervalMs` — never on a request's path —
 * and keeps, per instance and in memory, each partition's window of commits and an hour of
 * per-group history.
 *
 * Burrow reads every commit from `__consumer_offsets`; we see the committed offset once per round
 * instead. A round records a commit for a partition when its offset moved, or when a live member
 * of the group owns the partition: a live consumer stands for one that commits on an interval
 * (Java consumers re-commit the same offset; kafkajs commits only on change), so a stuck but
 * connected consumer shows STALL. A partition nobody owns whose offset does not move gets no new
 * commit, so once the time since its last commit exceeds the window's span it shows STOP.
 */
export class LagSampler {
  private admin: Admin | undefined;
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<void> | undefined;
  private stopped = false;
  private readonly partitions = new Map<string, PartitionState>();
  private readonly history = new Map<
    string,
    { group: string; topic: string; points: HistoryPoint[]; last?: { at: number; sum: number } }
  >();
  private readonly dlq: { at: number; perSec: number }[] = [];
  private dlqLast: { at: number; end: number } | undefined;
  private snapshot: LagSnapshot | undefined;
  private readonly now: () => number;
  /** Completed rounds, for tests waiting on a fresh sample. */
  rounds = 0;

  constructor(private readonly options: LagSamplerOptions) {
    this.now = options.now ?? Date.now;
    if (options.metrics) this.registerMetrics(options.metrics);
  }

  /** Starts sampling: a round now, then one every interval. Kafka being down only fails rounds (logged, counted). */
  start(): void {
    const tick = () => {
      this.current = this.sampleOnce()
        .catch((err: unknown) => {
          this.errors?.inc();
          this.options.log.warn({ err }, 'lag sample failed, will retry next interval');
        })
        .finally(() => {
          this.current = undefined;
          if (!this.stopped) this.timer = setTimeout(tick, this.options.intervalMs);
        });
    };
    tick();
  }

  /** The latest evaluation, or undefined before the first round finished. */
  latest(): LagSnapshot | undefined {
    return this.snapshot;
  }

  /** The last hour (historyMs) of lag, events/s and stalled partitions per group, and the DLQ's rate. */
  recent(): LagHistory {
    return {
      groups: [...this.history.values()].map(({ group, topic, points }) => ({ group, topic, points: [...points] })),
      dlq: [...this.dlq],
      at: new Date(this.now()).toISOString(),
    };
  }

  private errors: { inc(): void } | undefined;

  private async connected(): Promise<Admin> {
    if (this.admin) return this.admin;
    const admin = this.options.kafka.admin();
    await admin.connect();
    this.admin = admin;
    return admin;
  }

  private async sampleOnce(): Promise<void> {
    const admin = await this.connected();
    const nowMs = this.now();
    const groupIds = this.options.groups.includes('*')
      ? (await admin.listGroups()).groups
          .filter((g) => g.protocolType === 'consumer' || g.protocolType === '')
          .map((g) => g.groupId)
      : [...this.options.groups];
    const described = groupIds.length > 0 ? (await admin.describeGroups(groupIds)).groups : [];
    const ends = new Map<string, Promise<Map<number, number>>>();
    const endsOf = (topic: string) => {
      let p = ends.get(topic);
      if (!p) {
        p = admin.fetchTopicOffsets(topic).then((list) => new Map(list.map((o) => [o.partition, Number(o.high)])));
        ends.set(topic, p);
      }
      return p;
    };
    const groups: GroupLag[] = [];
    for (const groupId of groupIds) {
      try {
        groups.push(...(await this.sampleGroup(admin, groupId, described, endsOf, nowMs)));
      } catch (err) {
        // One group's failure (say its topic was just deleted) must not blind the others: it keeps
        // its last numbers with status ERR until it can be read again.
        this.errors?.inc();
        this.options.log.warn({ err, group: groupId }, 'could not sample a group');
        groups.push(
          ...(this.snapshot?.groups.filter((g) => g.group === groupId).map((g) => ({ ...g, status: 'ERR' as const })) ??
            []),
        );
      }
    }
    const dlqEnd = [...(await endsOf(this.options.dlqTopic).catch(() => new Map<number, number>())).values()].reduce(
      (a, b) => a + b,
      0,
    );
    if (this.dlqLast) this.dlq.push({ at: nowMs, perSec: rate(dlqEnd - this.dlqLast.end, nowMs - this.dlqLast.at) });
    this.dlqLast = { at: nowMs, end: dlqEnd };
    this.trim(this.dlq, nowMs);
    this.snapshot = { groups, at: new Date(nowMs).toISOString() };
    this.rounds += 1;
  }

  private async sampleGroup(
    admin: Admin,
    groupId: string,
    described: { groupId: string; members: { memberAssignment: Buffer }[] }[],
    endsOf: (topic: string) => Promise<Map<number, number>>,
    nowMs: number,
  ): Promise<GroupLag[]> {
    const groups: GroupLag[] = [];
    const owned = ownedPartitions(described.find((d) => d.groupId === groupId));
    const committed = await admin.fetchOffsets({ groupId });
    for (const { topic, partitions } of committed) {
      const end = await endsOf(topic);
      const offsets = new Map(partitions.map((p) => [p.partition, Number(p.offset)]));
      const rows: PartitionLag[] = [...end.keys()]
        .sort((a, b) => a - b)
        .map((partition) => {
          const endOffset = end.get(partition)!;
          const offset = offsets.get(partition);
          if (offset === undefined || offset < 0)
            return { partition, committed: null, end: endOffset, lag: null, status: 'OK' };
          const lag = Math.max(0, endOffset - offset);
          const state = this.partitionState(groupId, topic, partition);
          if (offset !== state.lastOffset || owned.has(`${topic}:${partition}`)) {
            state.commits.push({ offset, lag, at: nowMs });
            if (state.commits.length > this.options.window) state.commits.shift();
          }
          state.lastOffset = offset;
          return {
            partition,
            committed: offset,
            end: endOffset,
            lag,
            status: partitionStatus(state.commits, lag, nowMs),
          };
        });
      const lag = rows.reduce((sum, r) => sum + (r.lag ?? 0), 0);
      groups.push({ group: groupId, topic, status: groupStatus(rows.map((r) => r.status)), lag, partitions: rows });
      const sum = rows.reduce((s, r) => s + (r.committed ?? 0), 0);
      const stalled = rows.filter((r) => r.status === 'STALL' || r.status === 'STOP').length;
      this.record(groupId, topic, nowMs, lag, sum, stalled);
    }
    return groups;
  }

  private partitionState(group: string, topic: string, partition: number): PartitionState {
    const k = `${key(group, topic)}\u0000${partition}`;
    let state = this.partitions.get(k);
    if (!state) {
      state = { commits: [], lastOffset: undefined };
      this.partitions.set(k, state);
    }
    return state;
  }

  private record(group: string, topic: string, at: number, lag: number, committedSum: number, stalled: number): void {
    const k = key(group, topic);
    let h = this.history.get(k);
    if (!h) {
      h = { group, topic, points: [] };
      this.history.set(k, h);
    }
    // Events/s is how fast the committed offsets advance; a rewind counts as none.
    const eventsPerSec = h.last ? rate(committedSum - h.last.sum, at - h.last.at) : 0;
    h.points.push({ at, lag, eventsPerSec, stalled });
    h.last = { at, sum: committedSum };
    this.trim(h.points, at);
  }

  private trim(points: { at: number }[], nowMs: number): void {
    const from = nowMs - (this.options.historyMs ?? 3_600_000);
    while (points.length > 0 && points[0]!.at < from) points.shift();
  }

  private registerMetrics(registry: Registry): void {
    const latest = () => this.latest();
    const errors = counter(registry, { name: 'ops_lag_sample_errors_total', help: 'Lag sampling rounds that failed' });
    this.errors = { inc: () => errors.inc() };
    const each = (fn: (g: GroupLag) => void) => latest()?.groups.forEach(fn);
    gauge(registry, {
      name: 'ops_lag_messages',
      help: 'Messages between the group’s committed offset and the end of the partition (from the latest lag sample)',
      labelNames: ['group', 'topic', 'partition'],
      collect() {
        this.reset();
        each((g) =>
          g.partitions.forEach(
            (p) =>
              p.lag !== null && this.set({ group: g.group, topic: g.topic, partition: String(p.partition) }, p.lag),
          ),
        );
      },
    });
    gauge(registry, {
      name: 'ops_lag_partition_status',
      help: 'Burrow status of each partition of each group: 1 on the current status (OK, WARN, STALL, STOP, REWIND)',
      labelNames: ['group', 'topic', 'partition', 'status'],
      collect() {
        this.reset();
        each((g) =>
          g.partitions.forEach((p) =>
            this.set({ group: g.group, topic: g.topic, partition: String(p.partition), status: p.status }, 1),
          ),
        );
      },
    });
    gauge(registry, {
      name: 'ops_lag_stalled_partitions',
      help: 'Partitions of the group whose Burrow status is STALL or STOP',
      labelNames: ['group', 'topic'],
      collect() {
        this.reset();
        each((g) =>
          this.set(
            { group: g.group, topic: g.topic },
            g.partitions.filter((p) => p.status === 'STALL' || p.status === 'STOP').length,
          ),
        );
      },
    });
    gauge(registry, {
      name: 'ops_lag_last_sample_timestamp_seconds',
      help: 'When the latest successful lag sample was taken',
      collect() {
        const at = latest()?.at;
        if (at) this.set(Date.parse(at) / 1000);
      },
    });
  }

  /** Stops sampling and waits for a round in progress; safe to call twice. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.current;
    const admin = this.admin;
    this.admin = undefined;
    await admin?.disconnect();
  }
}

const rate = (delta: number, ms: number) => (ms > 0 ? Math.max(0, delta) / (ms / 1000) : 0);

/** `topic:partition` of every partition a live member of the group is assigned. */
function ownedPartitions(group: { members: { memberAssignment: Buffer }[] } | undefined): Set<string> {
  const owned = new Set<string>();
  for (const member of group?.members ?? []) {
    if (member.memberAssignment.length === 0) continue;
    const decoded = AssignerProtocol.MemberAssignment.decode(member.memberAssignment);
    for (const [topic, partitions] of Object.entries(decoded?.assignment ?? {}))
      for (const p of partitions) owned.add(`${topic}:${p}`);
  }
  return owned;
}
