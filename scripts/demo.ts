/**
 * Demo stream: a Taobao-like shopping population posting to the ingest API, so a newcomer sees
 * real profiles. First a backfill of 160 days of history (so lifecycle stages vary: new, loyal,
 * at risk, churned…), then a live trickle until stopped.
 *
 * Deterministic: the same DEMO_SEED gives the same people and the same backfill event ids, so
 * running the demo twice does not double anything (ingest dedupes by event id).
 *
 * Env: INGEST_PORT, WRITE_KEYS (the first key is used), DEMO_SEED (default 7), DEMO_PEOPLE
 * (default 150), DEMO_LIVE_PER_SEC (default 5; 0 stops after the backfill).
 */
import { writeKeysEnv } from '@pstream/ingest/config';
import { createDemoTraffic, type DemoEvent } from './demo-traffic';
import { envInt, parseEnv } from '@pstream/platform';
import { z } from 'zod';

const DAY = 86_400_000;
const port = process.env.INGEST_PORT ?? '8080';
const queryPort = process.env.QUERY_API_PORT ?? '8081';
const {
  WRITE_KEYS: writeKeys,
  DEMO_SEED: seed,
  DEMO_PEOPLE: peopleCount,
  DEMO_LIVE_PER_SEC: livePerSec,
} = parseEnv(
  z.object({
    // Read as ingest reads it; the first key is used.
    WRITE_KEYS: writeKeysEnv('dev-write-key=demo'),
    DEMO_SEED: envInt(7),
    DEMO_PEOPLE: envInt(150, 1),
    DEMO_LIVE_PER_SEC: envInt(5),
  }),
  process.env,
);
const writeKey = [...writeKeys.keys()][0]!;
const url = `http://127.0.0.1:${port}`;

const { people, session, pick } = createDemoTraffic(seed, peopleCount);
type Event = DemoEvent;

async function post(events: Event[]): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(`${url}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-write-key': writeKey },
      body: JSON.stringify({ events }),
    });
    if (res.status === 202) {
      const body = (await res.json()) as { rejected: unknown[] };
      if (body.rejected.length > 0)
        console.warn(`demo: ${body.rejected.length} events rejected: ${JSON.stringify(body.rejected[0])}`);
      return;
    }
    if ((res.status === 503 || res.status === 429) && attempt < 10) {
      await new Promise((r) => setTimeout(r, 1000));
      continue;
    }
    throw new Error(`ingest answered ${res.status}: ${await res.text()}`);
  }
}

async function waitForIngest(): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`ingest at ${url} did not become ready within 60 s`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function main(): Promise<void> {
  await waitForIngest();
  const now = Date.now();
  const history: Event[] = [];
  for (const p of people) {
    const from = now - p.firstDaysAgo * DAY;
    const to = now - p.lastActiveDaysAgo * DAY;
    for (let t = from; t <= to; t += (7 * DAY) / p.sessionsPerWeek) history.push(...session(p, Math.min(t, to), 'h'));
  }
  // ingest refuses events >24 h ahead; a session started "now" can run a few minutes ahead, so clamp
  for (const e of history) if (Date.parse(e.occurredAt as string) > now) e.occurredAt = new Date(now).toISOString();
  console.log(`demo: backfilling ${history.length} events for ${people.length} people over the last 160 days…`);
  for (let i = 0; i < history.length; i += 100) {
    await post(history.slice(i, i + 100));
    if ((i / 100) % 20 === 0) console.log(`demo: backfill ${Math.min(i + 100, history.length)}/${history.length}`);
  }
  // The token is not printed: logs outlive terminals, and API_TOKENS may hold a real one.
  console.log(
    `demo: backfill done. Try: curl -s -H "Authorization: Bearer $TOKEN" http://127.0.0.1:${queryPort}/v1/profiles/u-0001 (TOKEN: one of API_TOKENS with profiles:read)`,
  );
  if (livePerSec <= 0) return;
  console.log(`demo: live stream at ~${livePerSec} sessions/s (DEMO_LIVE_PER_SEC); Ctrl-C stops`);
  const live = people.filter((p) => p.lastActiveDaysAgo < 10);
  let sent = 0;
  const timer = setInterval(() => {
    const batch = Array.from({ length: livePerSec }, () =>
      session(pick(live), Date.now() - 60_000, `live${Date.now()}`),
    ).flat();
    for (const e of batch) if (Date.parse(e.occurredAt as string) > Date.now()) e.occurredAt = new Date().toISOString();
    post(batch).then(
      () => {
        sent += batch.length;
        if (sent % 500 < batch.length) console.log(`demo: ${sent} live events sent`);
      },
      (err: unknown) => console.error(`demo: ${(err as Error).message}`),
    );
  }, 1000);
  const stop = () => {
    clearInterval(timer);
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error(`demo: ${(err as Error).message}`);
  process.exit(1);
});
