/**
 * A preload (`NODE_OPTIONS="--require $PWD/bench/kafka-requests.cjs" pnpm bench:sustained`) that counts
 * every kafkajs request a process makes, by client role and API (Produce, Fetch, OffsetCommit,
 * Heartbeat…), with their bytes, and prints the running totals every KAFKA_REQUESTS_EVERY_MS (10 000) as one
 * JSON line on stderr prefixed `KAFKA_REQUESTS ` — subtract two lines to get a window's requests. What
 * the broker's CPU per event is made of: how many requests, how large (BENCHMARKS.md "Ingest and the
 * broker in the whole pipeline").
 */
const Module = require('node:module');
const { setInterval } = require('node:timers');

const proc = `${(process.argv.find((a) => /services\/[^/]+\/src\/main\.ts$/.test(a)) ?? process.argv[1] ?? '')
  .split('/')
  .slice(-3)
  .join('/')}:${process.pid}`;
/** `role api` → [requests, bytes sent]. */
const totals = new Map();
const print = () =>
  process.stderr.write(
    `KAFKA_REQUESTS ${JSON.stringify({ t: Date.now(), proc, requests: Object.fromEntries(totals) })}\n`,
  );
setInterval(print, Number(process.env.KAFKA_REQUESTS_EVERY_MS ?? 10_000)).unref();

const watch = (client, role) => {
  client.on(client.events.REQUEST, ({ payload }) => {
    const name = `${role} ${payload.apiName}`;
    const t = totals.get(name) ?? [0, 0];
    t[0] += 1;
    t[1] += payload.size ?? 0;
    totals.set(name, t);
  });
  return client;
};

const load = Module._load;
let patched = false;
Module._load = function (request, ...rest) {
  const loaded = load.call(this, request, ...rest);
  if (request === 'kafkajs' && !patched && loaded?.Kafka) {
    patched = true;
    const { consumer, producer } = loaded.Kafka.prototype;
    loaded.Kafka.prototype.consumer = function (...args) {
      return watch(consumer.apply(this, args), 'consumer');
    };
    loaded.Kafka.prototype.producer = function (...args) {
      return watch(producer.apply(this, args), 'producer');
    };
  }
  return loaded;
};
