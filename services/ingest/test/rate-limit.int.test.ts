import { createServer, type Server, type Socket } from 'node:net';
import { createSandbox, type Sandbox } from '@pstream/testkit';
import { startIngest } from '@pstream/testkit/services';

type Ingest = Awaited<ReturnType<typeof startIngest>>;
// An empty body is refused (400) after the rate limit has counted it, without touching Kafka,
// so many requests take no time and the windows below cannot run out under the test.
const send = (ingest: Ingest, writeKey = 'test-key') =>
  ingest.app.inject({
    method: 'POST',
    url: '/v1/events',
    headers: { 'x-write-key': writeKey, 'content-type': 'application/json' },
    payload: '{}',
  });

/** The per-write-key limit is one limit for every ingest instance sharing a Redis (§3.3 429). */
describe('rate limit across ingest instances', () => {
  jest.setTimeout(60_000);
  let box: Sandbox;
  const started: Ingest[] = [];
  const start = async (env: NodeJS.ProcessEnv) => {
    const ingest = await startIngest(box.kafka, { ...box.env, ...env });
    started.push(ingest);
    return ingest;
  };

  beforeAll(async () => {
    box = await createSandbox(1);
  });
  afterAll(async () => {
    for (const ingest of started) await ingest.close();
    await box?.cleanup();
  });

  it('lets two instances together allow one key no more than the configured burst, then 429 with Retry-After', async () => {
    // 20 per 20 s window: the two instances' counts add up in Redis.
    const env = { RATE_LIMIT_PER_SEC: '1', RATE_LIMIT_BURST: '20' };
    const [a, b] = [await start(env), await start(env)];
    const statuses: number[] = [];
    let limited: Awaited<ReturnType<typeof send>> | undefined;
    for (let i = 0; i < 40; i++) {
      const res = await send(i % 2 === 0 ? a : b);
      statuses.push(res.statusCode);
      if (res.statusCode === 429) limited = res;
    }
    expect(statuses.filter((s) => s !== 429)).toHaveLength(20);
    expect(statuses.slice(20)).toEqual(Array(20).fill(429));
    const retryAfter = Number(limited!.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(20);
    expect(limited!.json()).toMatchObject({ error: { code: 'ING_RATE_LIMITED' } });
    // another key has its own count, on either instance
    expect((await send(b, 'other-key')).statusCode).toBe(400);
    // Redis holds one counter per key, named by a digest, never by the write key itself
    const keys = await box.redis.keys(`${box.env.REDIS_PREFIX}:ratelimit:*`);
    expect(keys).toHaveLength(2);
    expect(keys.join(' ')).not.toMatch(/test-key|other-key/);
    expect((await Promise.all(keys.map((k) => box.redis.get(k)))).map(Number).sort((x, y) => x - y)).toEqual([1, 40]);
  });

  it('fails open to the per-instance limit when Redis refuses connections', async () => {
    // Port 1 has no listener: every check fails at once.
    const ingest = await start({ REDIS_URL: 'redis://127.0.0.1:1/0', RATE_LIMIT_PER_SEC: '1', RATE_LIMIT_BURST: '3' });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await send(ingest)).statusCode);
    expect(statuses).toEqual([400, 400, 400, 429]);
  });

  it("splits the per-instance fallback between an instance's workers", async () => {
    // One of two workers (INGEST_WORKERS=2) keeps half of the burst of 4 while Redis is away.
    const ingest = await start({
      REDIS_URL: 'redis://127.0.0.1:1/0',
      RATE_LIMIT_PER_SEC: '1',
      RATE_LIMIT_BURST: '4',
      INGEST_WORKERS: '2',
    });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await send(ingest)).statusCode);
    expect(statuses).toEqual([400, 400, 429]);
  });

  describe('with a Redis that accepts connections and never answers', () => {
    let silent: Server;
    const sockets = new Set<Socket>();
    beforeAll(async () => {
      silent = createServer((socket) => {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
      });
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    });
    afterAll(async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
    });

    it('answers from the per-instance limit instead of waiting on it', async () => {
      const { port } = silent.address() as { port: number };
      const ingest = await start({
        REDIS_URL: `redis://127.0.0.1:${port}/0`,
        RATE_LIMIT_REDIS_TIMEOUT_MS: '200',
        RATE_LIMIT_PER_SEC: '1',
        RATE_LIMIT_BURST: '2',
      });
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await send(ingest)).statusCode);
      expect(statuses).toEqual([400, 400, 429]);
    });
  });
});
