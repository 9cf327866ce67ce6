/**
 * The raw limit of a read (bench/reads.bench.ts): a Fastify process whose one route answers a
 * small constant JSON body, listening on NOOP_PORT. What every request pays before our code runs.
 */
import Fastify from 'fastify';

const port = Number(process.env.NOOP_PORT);
if (!Number.isInteger(port) || port <= 0)
  throw new Error(`NOOP_PORT must be a port number, got ${process.env.NOOP_PORT}`);
const app = Fastify({ logger: false });
app.get('/noop/:id', async () => ({ ok: true }));
app.get('/readyz', async () => ({ status: 'ready' }));
app.listen({ host: '127.0.0.1', port }).catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
