import cluster, { type Worker } from 'node:cluster';
import {
  handleSignals,
  once,
  runReadinessChecks,
  type CheckResult,
  type InstanceView,
  type Logger,
  type ReadinessCheck,
  type Registry,
} from '@pstream/platform';
import { AggregatorRegistry } from 'prom-client';

/**
 * Ingest on several cores: with INGEST_WORKERS > 1 the process started is a `node:cluster`
 * primary that serves no HTTP itself; it forks that many workers, each a whole ingest (main.ts:
 * its own Kafka producer, keyring cache, Postgres pool and rate-limit client) listening on the
 * shared port, where the primary hands each new connection to the next worker in turn.
 *
 * One instance still answers as one:
 * - `/metrics` and `/readyz`, whichever worker a scrape lands on, gather every worker's answer
 *   through the primary (`instanceView`): counters summed, histograms merged bucket by bucket
 *   (prom-client's `AggregatorRegistry.aggregate`), gauges by their own `aggregator`; the instance
 *   is ready only when every worker's checks pass.
 * - The rate limit is already the deployment's, in Redis; only its fallback bucket is per process,
 *   so each worker takes its share of it (app.ts).
 * - SIGTERM/SIGINT to the primary is passed to every worker, each of which drains as a single
 *   process does (stops accepting, answers what it holds only after acks=all, closes its clients);
 *   the primary exits once all have, 0 only when all exited 0.
 * - A worker that exits on its own takes the instance down (the others are drained, the primary
 *   exits 1), so a supervisor sees one failed process, as with one worker, rather than an instance
 *   quietly serving on fewer cores.
 *
 * The protocol between the two sides is three messages, tagged `pstream:gather`: a worker asks
 * (`ask`), the primary asks every worker (`report`), each answers (`reported`), and the primary
 * sends the merged answer back (`answer`).
 */

type What = 'metrics' | 'readiness';
type Message =
  | { pstream: 'gather'; kind: 'ask'; id: number; what: What }
  | { pstream: 'gather'; kind: 'report'; id: number; what: What }
  | { pstream: 'gather'; kind: 'reported'; id: number; value: unknown }
  | { pstream: 'gather'; kind: 'answer'; id: number; value: unknown };

const isGather = (m: unknown): m is Message =>
  typeof m === 'object' && m !== null && (m as { pstream?: unknown }).pstream === 'gather';

/** A worker's own readiness checks, each (as registerOpsRoutes bounds them; also the metrics' `readiness_check`). */
const CHECK_TIMEOUT_MS = 2000;
/** How long the primary waits for every worker's report: their checks, and the messages. */
const GATHER_TIMEOUT_MS = CHECK_TIMEOUT_MS + 500;
/** How long a worker waits for the primary's merged answer. */
const ASK_TIMEOUT_MS = GATHER_TIMEOUT_MS + 500;

/** A worker that did not report in time fails the instance's readiness under this name. */
const UNANSWERED = 'worker';

/** The instance's readiness from every worker's results: each check passes where it passed in every worker. */
export function mergeReadiness(reports: ReadonlyMap<number, CheckResult[] | undefined>): CheckResult[] {
  const merged = new Map<string, string[]>();
  for (const [worker, results] of reports) {
    if (results === undefined) {
      merged.set(UNANSWERED, [
        ...(merged.get(UNANSWERED) ?? []),
        `worker ${worker} did not answer within ${GATHER_TIMEOUT_MS} ms`,
      ]);
      continue;
    }
    for (const r of results) {
      const errors = merged.get(r.name) ?? [];
      if (!r.ok) errors.push(`worker ${worker}: ${r.error}`);
      merged.set(r.name, errors);
    }
  }
  return [...merged].map(([name, errors]) =>
    errors.length === 0 ? { name, ok: true } : { name, ok: false, error: errors.join('; ') },
  );
}

/**
 * The worker's side: answers the primary's `report` requests from this process's registry and
 * checks, and returns the view the ops routes answer from (asked of the primary).
 */
export function instanceView(options: { registry: Registry; checks: readonly ReadinessCheck[] }): InstanceView {
  const send = (m: Message) => process.send?.(m);
  const waiting = new Map<number, (value: unknown) => void>();
  let next = 0;
  process.on('message', (m: unknown) => {
    if (!isGather(m)) return;
    if (m.kind === 'answer') waiting.get(m.id)?.(m.value);
    else if (m.kind === 'report') {
      const local =
        m.what === 'metrics'
          ? options.registry.getMetricsAsJSON()
          : runReadinessChecks(options.checks, CHECK_TIMEOUT_MS);
      void local.then(
        (value) => send({ pstream: 'gather', kind: 'reported', id: m.id, value }),
        // getMetricsAsJSON rejects only when a collect() throws: the primary then counts this worker as silent.
        () => undefined,
      );
    }
  });
  const ask = (what: What) =>
    new Promise<unknown>((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error(`the ingest primary did not answer within ${ASK_TIMEOUT_MS} ms`));
      }, ASK_TIMEOUT_MS);
      waiting.set(id, (value) => {
        clearTimeout(timer);
        waiting.delete(id);
        resolve(value);
      });
      send({ pstream: 'gather', kind: 'ask', id, what });
    });
  return {
    metrics: async () => (await ask('metrics')) as string,
    readiness: async () => (await ask('readiness')) as CheckResult[],
  };
}

/** The primary's side of gathering: asks every live worker, waits for all (or the timeout), merges. */
function serveGathers(log: Logger): void {
  const pending = new Map<number, (worker: Worker, value: unknown) => void>();
  let next = 0;
  const gather = async (what: What): Promise<unknown> => {
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w?.isConnected() === true);
    const id = next++;
    const reports = new Map<number, unknown>(workers.map((w) => [w.id, undefined]));
    let answered = 0;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, GATHER_TIMEOUT_MS);
      pending.set(id, (worker, value) => {
        if (!reports.has(worker.id) || reports.get(worker.id) !== undefined) return;
        reports.set(worker.id, value);
        if (++answered === workers.length) {
          clearTimeout(timer);
          resolve();
        }
      });
      for (const w of workers) w.send({ pstream: 'gather', kind: 'report', id, what } satisfies Message);
      if (workers.length === 0) {
        clearTimeout(timer);
        resolve();
      }
    });
    pending.delete(id);
    if (what === 'readiness') return mergeReadiness(reports as Map<number, CheckResult[] | undefined>);
    const silent = [...reports].filter(([, v]) => v === undefined).map(([w]) => w);
    if (silent.length > 0) log.warn({ workers: silent }, 'workers left out of /metrics: no answer in time');
    return AggregatorRegistry.aggregate([...reports.values()].filter((v) => v !== undefined) as object[]).metrics();
  };
  cluster.on('message', (worker: Worker, m: unknown) => {
    if (!isGather(m)) return;
    if (m.kind === 'reported') pending.get(m.id)?.(worker, m.value);
    else if (m.kind === 'ask') {
      void gather(m.what).then(
        (value) => worker.isConnected() && worker.send({ pstream: 'gather', kind: 'answer', id: m.id, value }),
        (err: unknown) => log.error({ err, what: m.what }, 'gathering the workers failed'),
      );
    }
  });
}

/**
 * Runs the primary: forks `count` workers (this same program; `cluster.isWorker` tells main.ts it is
 * one), serves their gathers and stops them all on a signal or when one exits by itself.
 * `deadlineMs` bounds the primary's whole shutdown; each worker keeps its own, shorter one.
 */
export function runPrimary(count: number, log: Logger, deadlineMs: number): void {
  serveGathers(log);
  /** Set once a worker exited unasked, or not cleanly: the instance then exits 1. */
  let failed = false;
  let stopping = false;
  const exits: Promise<void>[] = [];
  const stop = once(async () => {
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    await Promise.all(exits);
    if (failed) throw new Error('a worker exited by itself or did not stop cleanly');
  });
  for (let i = 0; i < count; i++) {
    const worker = cluster.fork();
    exits.push(
      new Promise((resolve) =>
        worker.once('exit', (code, signal) => {
          resolve();
          if (code === 0 && stopping) return;
          failed = true;
          if (stopping) return;
          log.error({ worker: worker.id, code, signal }, 'worker exited; stopping the instance');
          setTimeout(() => process.exit(1), deadlineMs).unref();
          void stop().then(
            () => process.exit(1),
            () => process.exit(1),
          );
        }),
      ),
    );
  }
  log.info({ workers: count }, 'workers started');
  handleSignals(log, stop, deadlineMs);
}
