import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promtool, promtoolUnavailable } from '@pstream/testkit';

const skip = promtoolUnavailable();
if (skip) console.warn(`Prometheus rules test skipped: ${skip}`);
const describeWithPromtool = skip ? describe.skip : describe;

const root = join(__dirname, '..');
const prometheusDir = join(root, 'infra', 'prometheus');

/*
 * infra/prometheus for users' own monitoring: the scrape config and alert rules are valid, the
 * alerts fire (and stay quiet) as alerts.test.yml says — a stalled partition among them — and
 * every query of the Grafana dashboard parses.
 */
describeWithPromtool('infra/prometheus', () => {
  it('the alert rules pass promtool check rules', async () => {
    const { code, output } = await promtool(['check', 'rules', join(prometheusDir, 'alerts.yml')]);
    expect(output).toMatch(/SUCCESS: \d+ rules found/);
    expect(code).toBe(0);
  });

  it('the scrape config passes promtool check config and scrapes the four services', async () => {
    const { code, output } = await promtool(['check', 'config', join(prometheusDir, 'prometheus.yml')]);
    expect({ code, output }).toMatchObject({ code: 0 });
    const jobs = [...readFileSync(join(prometheusDir, 'prometheus.yml'), 'utf8').matchAll(/job_name: (\S+)/g)].map(
      (m) => m[1],
    );
    expect(jobs.sort()).toEqual(['ingest', 'query-api', 'scorer', 'segmenter']);
  });

  it('the alerts fire as alerts.test.yml expects (promtool test rules)', async () => {
    const { code, output } = await promtool(['test', 'rules', join(prometheusDir, 'alerts.test.yml')]);
    expect(output).toMatch(/SUCCESS/);
    expect(code).toBe(0);
    // every alert of alerts.yml has a test
    const alerts = [...readFileSync(join(prometheusDir, 'alerts.yml'), 'utf8').matchAll(/- alert: (\w+)/g)].map(
      (m) => m[1],
    );
    const tested = new Set(
      [...readFileSync(join(prometheusDir, 'alerts.test.yml'), 'utf8').matchAll(/alertname: (\w+)/g)].map((m) => m[1]),
    );
    expect(alerts.filter((a) => !tested.has(a))).toEqual([]);
  });

  it('every query of the Grafana dashboard parses (checked as recording rules)', async () => {
    const dashboard = JSON.parse(
      readFileSync(join(root, 'infra', 'grafana', 'dashboards', 'pstream.json'), 'utf8'),
    ) as {
      panels: { title: string; targets: { expr: string }[] }[];
    };
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
    expect(exprs.length).toBeGreaterThan(10);
    const dir = mkdtempSync(join(tmpdir(), 'pstream-dashboard-'));
    try {
      const file = join(dir, 'dashboard-rules.yml');
      const rules = exprs
        .map((expr, i) => `      - record: dashboard:q${i}\n        expr: ${JSON.stringify(expr)}`)
        .join('\n');
      writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules}\n`);
      const { code, output } = await promtool(['check', 'rules', file]);
      expect({ code, output: output.includes('SUCCESS') ? 'SUCCESS' : output }).toEqual({ code: 0, output: 'SUCCESS' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
