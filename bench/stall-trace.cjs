/**
 * A preload (`node --require bench/stall-trace.cjs`) that prints, as one JSON line each on stderr
 * prefixed `TRACE `, what can hold a request up inside a process: event-loop gaps over 15 ms, GC
 * pauses over 5 ms (with their kind), each new Postgres connection with its connect time, and every
 * HTTP answer slower than 25 ms. `t` is Date.now(), so lines of several processes line up.
 * `BENCH_READ_TRACE=1 pnpm bench:reads` loads it into the query APIs and the no-op route and prints
 * the bench's load windows beside them (BENCHMARKS.md "Reads", issue 21 fourth pass).
 *
 * For the consume loop (`BENCH_STALL_TRACE=1 pnpm bench:sustained`, BENCHMARKS.md "The freshness
 * stalls"): every kafkajs request slower than usual (a Fetch over 100 ms — the wait under traffic is
 * 20 ms —, anything else over 25 ms; with the time it queued in the client before it was sent), every
 * batch a consumer took over 50 ms to process, and the first Redis command of each 100 ms that took
 * over 25 ms from being sent to its reply being handled (ioredis; with how many commands were in flight;
 * a blocked event loop of this process counts in it too — compare with the loop gaps).
 */
const http = require('node:http');
const { setInterval } = require('node:timers');
const Module = require('node:module');
const { PerformanceObserver, performance } = require('node:perf_hooks');
const { GC_KINDS } = require('./preload-lines.cjs');

const proc = `${(process.argv[1] ?? '').split('/').slice(-5).join('/')}:${process.pid}`;
const trace = (fields) => process.stderr.write(`TRACE ${JSON.stringify({ t: Date.now(), proc, ...fields })}\n`);

// Where this process's monotonic clock (CPU profiles' timestamps, µs) stands against Date.now(), to line a
// profile's samples up with the trace.
trace({ ev: 'clock', monoUs: Number(process.hrtime.bigint() / 1000n) });

const TICK_MS = 5;
let last = performance.now();
setInterval(() => {
  const now = performance.now();
  const gap = now - last - TICK_MS;
  if (gap > 15) trace({ ev: 'loop', ms: Math.round(gap) });
  last = now;
}, TICK_MS).unref();

new PerformanceObserver((list) => {
  for (const e of list.getEntries())
    if (e.duration > 5)
      trace({ ev: 'gc', kind: GC_KINDS[e.detail?.kind] ?? e.detail?.kind, ms: Math.round(e.duration) });
}).observe({ entryTypes: ['gc'] });

/** Traces the slow requests and batches of a kafkajs consumer or producer (its instrumentation events). */
const watchKafka = (client, role) => {
  const { REQUEST, END_BATCH_PROCESS } = client.events;
  client.on(REQUEST, ({ payload }) => {
    const slow = payload.apiName === 'Fetch' ? 100 : 25;
    if (payload.duration > slow)
      trace({
        ev: 'kafka-request',
        role,
        api: payload.apiName,
        ms: payload.duration,
        queuedMs: payload.pendingDuration,
        bytes: payload.size,
      });
  });
  if (END_BATCH_PROCESS)
    client.on(END_BATCH_PROCESS, ({ payload }) => {
      if (payload.duration > 50)
        trace({ ev: 'kafka-batch', partition: payload.partition, size: payload.batchSize, ms: payload.duration });
    });
  return client;
};

/** ioredis: the first command of each 100 ms whose reply took over 25 ms, and how many were in flight. */
const watchRedis = (Redis) => {
  const send = Redis.prototype.sendCommand;
  let inFlight = 0;
  let quietUntil = 0;
  Redis.prototype.sendCommand = function (command, ...rest) {
    const t0 = performance.now();
    inFlight++;
    const done = () => {
      inFlight--;
      const ms = performance.now() - t0;
      if (ms > 25 && t0 >= quietUntil) {
        quietUntil = t0 + 100;
        trace({ ev: 'redis', cmd: command.name, ms: Math.round(ms), inFlight: inFlight + 1 });
      }
    };
    command.promise?.then(done, done);
    return send.call(this, command, ...rest);
  };
};

// pg's Client, wrapped once it is first loaded: the time from connect() to the connection being usable
const load = Module._load;
let wrapped = false;
const patched = new Set();
Module._load = function (request, ...rest) {
  const loaded = load.call(this, request, ...rest);
  if (request === 'kafkajs' && !patched.has('kafkajs') && loaded?.Kafka) {
    patched.add('kafkajs');
    const { consumer, producer } = loaded.Kafka.prototype;
    loaded.Kafka.prototype.consumer = function (...args) {
      return watchKafka(consumer.apply(this, args), 'consumer');
    };
    loaded.Kafka.prototype.producer = function (...args) {
      return watchKafka(producer.apply(this, args), 'producer');
    };
  }
  if (request === 'ioredis' && !patched.has('ioredis') && loaded?.Redis?.prototype?.sendCommand) {
    patched.add('ioredis');
    watchRedis(loaded.Redis);
  }
  if (request === 'pg' && !wrapped && loaded?.Client) {
    wrapped = true;
    const connect = loaded.Client.prototype.connect;
    loaded.Client.prototype.connect = function (...args) {
      const t0 = performance.now();
      const app = this.connectionParameters?.application_name;
      const done = () => trace({ ev: 'pg-connect', app, ms: Math.round(performance.now() - t0) });
      if (typeof args[0] === 'function') {
        const callback = args[0];
        args[0] = (err, ...more) => {
          if (!err) done();
          return callback(err, ...more);
        };
        return connect.apply(this, args);
      }
      const result = connect.apply(this, args);
      result?.then?.(done, () => undefined);
      return result;
    };
  }
  return loaded;
};

const emit = http.Server.prototype.emit;
http.Server.prototype.emit = function (event, request, response) {
  if (event === 'request' && !request.url?.startsWith('/readyz')) {
    const t0 = performance.now();
    response.on('finish', () => {
      const ms = performance.now() - t0;
      if (ms > 25) trace({ ev: 'slow-answer', ms: Math.round(ms) });
    });
  }
  return emit.apply(this, arguments);
};
