import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createQueryClient } from '@pstream/client';
import {
  createSandbox,
  freePort,
  prometheusPath,
  prometheusUnavailable,
  type Sandbox,
  startTcpProxy,
  waitFor,
} from '@pstream/testkit';
import { SERVICE_NAMES, type ServiceProcesses, startServiceProcesses } from '@pstream/testkit/services';

const skip = prometheusUnavailable();
if (skip) console.warn(`real-Prometheus test skipped: ${skip}`);
const describeWithPrometheus = skip ? describe.skip : describe;

const root = join(__dirname, '..');
const prometheusDir = join(root, 'infra', 'prometheus');
/** The test's rules fire 6 times sooner than the real ones: `for: 1m` becomes `for: 10s`. */
const FOR_SCALE = 6;

/**
 * infra/prometheus/prometheus.yml as the test runs it: the four targets at the addresses the
 * services listen on here, and a 1 s scrape and evaluation interval instead of 15 s. Fails when a
 * job of the real file is not found, so the test follows the file.
 */
function testConfig(addresses: ServiceProcesses['addresses']): string {
  let text = readFileSync(join(prometheusDir, 'prometheus.yml'), 'utf8');
  for (const name of SERVICE_NAMES) {
    const job = new RegExp(`(job_name: ${name}\\s+static_configs:\\s+- targets: )\\["[^"]+"\\]`);
    if (!job.test(text)) throw new Error(`prometheus.yml: no static target for job ${name}`);
    text = text.replace(job, `$1["${addresses[name]}"]`);
  }
  return text
    .replace(/scrape_interval: 15s/, 'scrape_interval: 1s')
    .replace(/evaluation_interval: 15s/, 'evaluation_interval: 1s');
}

/** infra/prometheus/alerts.yml with every `for` divided by FOR_SCALE; expressions and windows unchanged. */
function testRules(): string {
  return readFileSync(join(prometheusDir, 'alerts.yml'), 'utf8').replace(
    /for: (\d+)m/g,
    (_, m: string) => `for: ${(Number(m) * 60) / FOR_SCALE}s`,
  );
}

function forOf(alert: string): number {
  const m = new RegExp(`- alert: ${alert}\\n(?:.*\\n)*?\\s+for: (\\d+)m`).exec(
    readFileSync(join(prometheusDir, 'alerts.yml'), 'utf8'),
  );
  if (!m) throw new Error(`alerts.yml: no for: of ${alert}`);
  return (Number(m[1]) * 60_000) / FOR_SCALE;
}

type Series = { metric: Record<string, string>; value: [number, string] };
type Alert = { labels: Record<string, string>; state: 'pending' | 'firing'; activeAt: string };

/*
 * A real Prometheus (Debian's binary, the package promtool comes from) runs
 * infra/prometheus/prometheus.yml and alerts.yml against the four services, each its own process
 * running its main.ts as `pnpm start` does, on the sandbox's topics, groups, schema and key prefix:
 * every target is up, the recording rules make series, every query of the Grafana dashboard returns
 * series, and a scorer whose Redis goes away — connected, but making no progress while events
 * wait — fires ConsumerPartitionStalled, which resolves once Redis is back. The rules file is generated from the real
 * one with its
 * `for`s 6 times shorter (testRules); everything else is the real file.
 */
describeWithPrometheus('a real Prometheus scraping the four services', () => {
  jest.setTimeout(120_000);
  let box: Sandbox;
  let services: ServiceProcesses;
  let proxy: Awaited<ReturnType<typeof startTcpProxy>>;
  let prometheus: ChildProcess;
  let exited: Promise<unknown>;
  let promUrl: string;
  let output = '';
  let dir: string;

  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${promUrl}${path}`);
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`Prometheus ${path}: ${body.error}`);
    return body.data;
  };
  const query = (expr: string) =>
    api<{ result: Series[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`).then((d) => d.result);
  const post = (payload: object) =>
    fetch(`http://${services.addresses.ingest}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-write-key': 'dev-write-key' },
      body: JSON.stringify(payload),
    });

  beforeAll(async () => {
    box = await createSandbox(2);
    const redisUrl = new URL(process.env.REDIS_URL!);
    proxy = await startTcpProxy({ host: redisUrl.hostname, port: Number(redisUrl.port || 6379) });
    redisUrl.host = `127.0.0.1:${proxy.port}`;
    services = await startServiceProcesses(
      {
        ...box.env,
        LOG_LEVEL: 'warn',
        SEGMENTER_SWEEP_INTERVAL_MS: '500',
        LAG_GROUPS: `${box.env.SCORER_GROUP},${box.env.SEGMENTER_GROUP}`,
        LAG_SAMPLE_INTERVAL_MS: '500',
        LAG_WINDOW: '4',
      },
      { scorer: { REDIS_URL: redisUrl.toString() } },
    );

    dir = mkdtempSync(join(tmpdir(), 'pstream-prometheus-'));
    writeFileSync(join(dir, 'prometheus.yml'), testConfig(services.addresses));
    writeFileSync(join(dir, 'alerts.yml'), testRules());
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    prometheus = spawn(
      prometheusPath,
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    prometheus.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    prometheus.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    exited = new Promise((resolve) => prometheus.on('exit', resolve));
    await waitFor(
      'Prometheus to be ready',
      async () => ((await fetch(`${promUrl}/-/ready`)).ok ? true : undefined),
      60_000,
      200,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${output}`);
    });

    // Work for every panel: accepted and rejected events, a person's first stage, a dead letter, reads.
    expect(
      (
        await post({
          events: [{ type: 'click', userId: 'pm-1', target: { type: 'product', id: 'p-1' } }, { type: 'nope' }],
        })
      ).status,
    ).toBe(202);
    expect((await post({ type: 'follow', anonymousId: 'pm-a', target: { type: 'shop', id: 's-1' } })).status).toBe(202);
    const raw = box.kafka.producer();
    await raw.connect();
    await raw.send({ topic: box.env.EVENTS_TOPIC!, messages: [{ key: 'x', value: 'not json' }] });
    await raw.disconnect();
    const client = createQueryClient({ baseUrl: `http://${services.addresses['query-api']}`, token: 'dev-api-token' });
    await waitFor('pm-1’s profile', () => client.profile('pm-1'), 30_000);
  }, 120_000);

  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      prometheus.kill('SIGTERM');
      await exited;
    }
    proxy?.restore();
    await services?.close();
    await proxy?.close();
    await box?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('scrapes every target of prometheus.yml, all up', async () => {
    const targets = await waitFor(
      'every target up',
      async () => {
        const { activeTargets } = await api<{
          activeTargets: { labels: { job: string }; health: string; lastError: string }[];
        }>('/api/v1/targets');
        return activeTargets.length === SERVICE_NAMES.length && activeTargets.every((t) => t.health === 'up')
          ? activeTargets
          : undefined;
      },
      30_000,
    );
    expect(targets.map((t) => t.labels.job).sort()).toEqual([...SERVICE_NAMES].sort());
    const up = await query('up');
    expect(up.map((s) => [s.metric.job, s.value[1]]).sort()).toEqual(SERVICE_NAMES.map((n) => [n, '1']).sort());
  });

  it('the recording rules make a series for each consumer group', async () => {
    const groups = [box.env.SCORER_GROUP!, box.env.SEGMENTER_GROUP!].sort();
    for (const rule of ['pstream:consumer_lag:sum', 'pstream:stalled_partitions:max']) {
      const series = await waitFor(
        `${rule} for both groups`,
        async () => {
          const result = await query(rule);
          return result.length === 2 ? result : undefined;
        },
        30_000,
      );
      expect(series.map((s) => s.metric.group).sort()).toEqual(groups);
      expect(series.every((s) => s.metric.topic === box.env.EVENTS_TOPIC)).toBe(true);
    }
  });

  it('every query of the Grafana dashboard returns series', async () => {
    const dashboard = JSON.parse(
      readFileSync(join(root, 'infra', 'grafana', 'dashboards', 'pstream.json'), 'utf8'),
    ) as {
      panels: { title: string; targets: { expr: string }[] }[];
    };
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => ({ panel: p.title, expr: t.expr })));
    expect(exprs.length).toBeGreaterThan(10);
    // Series appear as scrapes and rule evaluations come in: ask until every query has one.
    let missing: string[] = [];
    await waitFor(
      'a series for every dashboard query',
      async () => {
        missing = [];
        for (const { panel, expr } of exprs) if ((await query(expr)).length === 0) missing.push(`${panel}: ${expr}`);
        return missing.length === 0 ? true : undefined;
      },
      60_000,
      1000,
    ).catch(() => undefined);
    expect(missing).toEqual([]);
  });

  it('a scorer making no progress while events wait fires ConsumerPartitionStalled within its for', async () => {
    const forMs = forOf('ConsumerPartitionStalled');
    const scorerAlert = (alerts: Alert[]) =>
      alerts.find((a) => a.labels.alertname === 'ConsumerPartitionStalled' && a.labels.group === box.env.SCORER_GROUP);
    expect(scorerAlert((await api<{ alerts: Alert[] }>('/api/v1/alerts')).alerts)).toBeUndefined();

    // The scorer loses Redis: it stays in its group and owns its partitions, but cannot apply.
    proxy.cut();
    const events = Array.from({ length: 20 }, (_, i) => ({
      type: 'click',
      userId: `stall-${i}`,
      target: { type: 'product', id: 'p-9' },
    }));
    expect((await post({ events })).status).toBe(202);

    let pendingSeen = false;
    const firing = await waitFor(
      'ConsumerPartitionStalled firing for the scorer',
      async () => {
        const alert = scorerAlert((await api<{ alerts: Alert[] }>('/api/v1/alerts')).alerts);
        if (alert?.state === 'pending') pendingSeen = true;
        return alert?.state === 'firing' ? { alert, at: Date.now() } : undefined;
      },
      forMs + 60_000,
      250,
    );
    expect(pendingSeen).toBe(true);
    expect(firing.alert.labels).toMatchObject({ severity: 'critical', topic: box.env.EVENTS_TOPIC });
    // It waited its `for` from the moment the stall was seen (activeAt) before firing.
    expect(firing.at - Date.parse(firing.alert.activeAt)).toBeGreaterThanOrEqual(forMs);
    // The segmenter's group, which kept applying, has no such alert.
    const segmenter = (await api<{ alerts: Alert[] }>('/api/v1/alerts')).alerts.filter(
      (a) => a.labels.group === box.env.SEGMENTER_GROUP,
    );
    expect(segmenter).toEqual([]);
  });

  it('the alert resolves once the scorer has Redis again and catches up', async () => {
    proxy.restore();
    await waitFor(
      'the scorer’s lag back to 0',
      async () => {
        const lag = await query(`pstream:consumer_lag:sum{group="${box.env.SCORER_GROUP}"}`);
        return lag[0]?.value[1] === '0' ? true : undefined;
      },
      60_000,
      500,
    );
    await waitFor(
      'ConsumerPartitionStalled resolved',
      async () => {
        const alerts = (await api<{ alerts: Alert[] }>('/api/v1/alerts')).alerts;
        return alerts.some((a) => a.labels.alertname === 'ConsumerPartitionStalled') ? undefined : true;
      },
      30_000,
      500,
    );
  });
});
