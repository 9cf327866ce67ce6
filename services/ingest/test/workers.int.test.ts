import { readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { createKeyring, loadKeyringConfig } from '@pstream/platform';
import { metricSample as sample, promtool, promtoolUnavailable, readTopic, waitFor } from '@pstream/testkit';
import {
  startServiceProcesses,
  storeSandbox,
  type ServiceProcesses,
  type StoreSandbox,
} from '@pstream/testkit/services';

type Reply = { status: number; text: string };

/**
 * One request on a connection of its own: node:cluster's primary hands each new connection to the
 * next worker in turn, so a run of these reaches every worker (a kept-alive connection would stay
 * on one).
 */
function send(address: string, method: 'GET' | 'POST', path: string, body?: unknown, writeKey = ''): Promise<Reply> {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host,
        port: Number(port),
        method,
        path,
        agent: false,
        headers: body === undefined ? {} : { 'content-type': 'application/json', 'x-write-key': writeKey },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** The workers of a node:cluster primary: its children running the same program (tsx's esbuild is a child too). */
function workersOf(primary: number): number[] {
  const program = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').at(-2);
  const own = program(primary);
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .flatMap((e) => {
      try {
        const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
        const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        return parent === primary && program(Number(e)) === own ? [Number(e)] : [];
      } catch {
        return []; // gone meanwhile
      }
    });
}

const click = (userId: string, eventId: string) => ({
  type: 'click',
  userId,
  eventId,
  target: { type: 'product', id: 'p-1' },
});

/** INGEST_WORKERS=2 (src/workers.ts): one instance on two processes still answers, limits and stops as one. */
describe('ingest with two workers', () => {
  jest.setTimeout(120_000);
  let store: StoreSandbox;
  let ingest: ServiceProcesses;
  let address: string;

  beforeAll(async () => {
    store = await storeSandbox('ingest-workers');
    ingest = await startServiceProcesses(
      {
        ...store.box.env,
        LOG_LEVEL: 'info',
        INGEST_WORKERS: '2',
        WRITE_KEYS: 'metrics-key=web,limit-key=web,stop-key=app',
        // 30 requests per 30 s window and key: no test below comes near a window's end.
        RATE_LIMIT_PER_SEC: '1',
        RATE_LIMIT_BURST: '30',
      },
      {},
      ['ingest'],
    );
    address = ingest.addresses.ingest;
    // /healthz answers once one worker listens; the instance is ready once both answer for it.
    await waitFor('both workers to answer /readyz', async () =>
      (await send(address, 'GET', '/readyz')).status === 200 ? true : undefined,
    );
  });
  afterAll(async () => {
    await ingest?.close();
    await store?.close();
  });

  it('names each worker in its log lines', () => {
    const lines = ingest
      .output('ingest')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { worker?: number; role?: string; msg: string });
    expect(lines).toContainEqual(expect.objectContaining({ role: 'primary', msg: 'workers started' }));
    expect(new Set(lines.map((l) => l.worker).filter((w) => w !== undefined))).toEqual(new Set([1, 2]));
  });

  it('answers /metrics for both workers together, whichever one a scrape reaches', async () => {
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        send(address, 'POST', '/v1/events', { events: [click(`m-${i}`, `m-${i}`), { type: 'click' }] }, 'metrics-key'),
      ),
    );
    expect(replies.map((r) => r.status)).toEqual(Array(20).fill(202));
    for (let scrape = 0; scrape < 4; scrape++) {
      const { status, text } = await send(address, 'GET', '/metrics');
      expect(status).toBe(200);
      // Counters summed, histograms merged bucket by bucket, gauges by their own rule.
      expect(sample(text, 'ingest_processes')).toBe(2);
      expect(sample(text, 'ingest_events_accepted_total', { source: 'web' })).toBe(20);
      expect(sample(text, 'ingest_events_rejected_total', { source: 'web', reason: 'invalid' })).toBe(20);
      expect(sample(text, 'ingest_produce_duration_seconds_count', { outcome: 'ok' })).toBe(20);
      expect(sample(text, 'ingest_produce_duration_seconds_bucket', { le: '+Inf', outcome: 'ok' })).toBe(20);
      expect(sample(text, 'http_requests_total', { route: '/v1/events', method: 'POST', status: '202' })).toBe(20);
      expect(sample(text, 'ingest_kafka_breaker_open')).toBe(0);
      expect(sample(text, 'readiness_check', { check: 'kafka' })).toBe(1);
      if (scrape === 0 && !promtoolUnavailable()) {
        const { code, output } = await promtool(['check', 'metrics'], text);
        expect({ code, output }).toEqual({ code: 0, output: '' });
      }
    }
    const ready = await send(address, 'GET', '/readyz');
    expect(JSON.parse(ready.text)).toEqual({
      status: 'ready',
      checks: [
        { name: 'kafka', ok: true },
        { name: 'producer', ok: true },
      ],
    });
  });

  it('shares one rate limit between the workers', async () => {
    // An empty body is refused (400) after the limit counted it; 40 connections alternate between the workers.
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) statuses.push((await send(address, 'POST', '/v1/events', {}, 'limit-key')).status);
    expect(statuses.slice(0, 30)).toEqual(Array(30).fill(400));
    expect(statuses.slice(30)).toEqual(Array(10).fill(429));
  });

  it('drains every worker on SIGTERM: each 202 is on Kafka, then the workers and the primary exit 0', async () => {
    const primary = ingest.pids.ingest;
    const workers = workersOf(primary);
    expect(workers).toHaveLength(2);
    const events = (i: number) => Array.from({ length: 5 }, (_, j) => click(`s-${i}`, `s-${i}-${j}`));
    const inFlight = Array.from({ length: 20 }, (_, i) =>
      send(address, 'POST', '/v1/events', { events: events(i) }, 'stop-key').then(
        (reply) => ({ i, reply }),
        (err: Error) => ({ i, err }),
      ),
    );
    // SIGTERM once the first answer is back, with the other requests under way.
    await Promise.race(inFlight);
    const exit = await ingest.stop('ingest');
    const outcomes = await Promise.all(inFlight);

    expect(exit).toEqual({ code: 0, signal: null });
    expect(workers.filter((pid) => readdirSync('/proc').includes(String(pid)))).toEqual([]);
    const stopped = ingest
      .output('ingest')
      .split('\n')
      .filter((l) => l.includes('"msg":"stopped"'))
      .map((l) => (JSON.parse(l) as { worker?: number; role?: string }).worker ?? 'primary');
    expect(stopped.sort()).toEqual([1, 2, 'primary']);

    // Every request was either answered 202 (its events on Kafka), 503 while a worker stopped, or
    // refused a connection once the workers stopped listening: never another answer, never a lost 202.
    const accepted = outcomes.filter((o) => 'reply' in o && o.reply.status === 202).map((o) => o.i);
    expect(accepted.length).toBeGreaterThan(0);
    for (const o of outcomes) {
      if ('reply' in o) expect([202, 503]).toContain(o.reply.status);
      else expect(o.err.message).toMatch(/ECONNREFUSED|ECONNRESET|socket hang up/);
    }
    const keyring = createKeyring(loadKeyringConfig(store.box.env), store.pool);
    const wanted = accepted.flatMap((i) => events(i).map((e) => e.eventId));
    const onTopic = await readTopic<{ eventId: string }>(
      store.box.kafka,
      store.box.env.EVENTS_TOPIC!,
      (values) => wanted.every((id) => values.some((v) => v.eventId === id)),
      30_000,
      async (value) => {
        const [opened] = await keyring.open([value]);
        if (opened?.kind !== 'opened') throw new Error(`a message on the topic does not open: ${opened?.kind}`);
        return JSON.parse(opened.plaintext.toString('utf8')) as { eventId: string };
      },
    );
    expect(onTopic.length).toBeGreaterThanOrEqual(wanted.length);
  });
});
