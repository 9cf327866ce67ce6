/**
 * A preload for the query API (`node --require bench/read-split.cjs`) that times the parts of every
 * `GET /v1/profiles/{id}` and appends them to `BENCH_READ_SPLIT_FILE`, one JSON array a line, for
 * bench/reads.bench.ts to summarize per paced window (`BENCH_READ_SPLIT=1 pnpm bench:reads`,
 * BENCHMARKS.md "Reads", issue 21 eighth pass). Nothing in the service changes: the parts are told
 * apart from outside, by the id each carries.
 *
 * Per read, in absolute ms (`performance.timeOrigin + performance.now()`, comparable with Date.now()):
 *   a  the 'request' event (Node has parsed the HTTP head)
 *   h  the Redis MGET holding the id written (the person reader's batch leaves on the `setImmediate` after
 *      the handler's turn, the turn `facts.get` was asked in: so `pre` also holds that turn's wait)
 *   s  the facts statement holding the id written to its Postgres connection (after the batch's
 *      `setImmediate`, or after waiting for one of the statements already out)
 *   e  that statement's answer parsed (pg's callback)
 *   r  the MGET's answer (ioredis resolved it)
 *   f  the answer's last byte handed to the socket ('finish')
 * Lines `["g", start, ms]` are GC pauses (any kind), to line up with slow reads.
 */
const http = require('node:http');
const Module = require('node:module');
const { lineWriter } = require('./preload-lines.cjs');
const { PerformanceObserver, performance } = require('node:perf_hooks');

const file = process.env.BENCH_READ_SPLIT_FILE;
if (!file) throw new Error('bench/read-split.cjs needs BENCH_READ_SPLIT_FILE');
const line = lineWriter(file);
const origin = performance.timeOrigin;
const now = () => origin + performance.now();
const PATH = '/v1/profiles/';
const STATEMENT = 'profile-facts-batch';

/** Reads under way by id; an id is asked again only ~2 s later in the bench (it walks 2 000 ids). */
const open = new Map();

const openRead = (id, field) => {
  const list = open.get(id);
  return list?.find((r) => r[field] === undefined);
};

const emit = http.Server.prototype.emit;
http.Server.prototype.emit = function (event, request, response) {
  if (event === 'request' && request.url?.startsWith(PATH)) {
    const id = decodeURIComponent(request.url.slice(PATH.length));
    const r = { a: now() };
    const list = open.get(id);
    if (list) list.push(r);
    else open.set(id, [r]);
    response.on('finish', () => {
      r.f = now();
      const l = open.get(id);
      l.splice(l.indexOf(r), 1);
      if (l.length === 0) open.delete(id);
      line([r.a, r.h, r.s, r.e, r.r, r.f, response.statusCode]);
    });
  }
  return emit.apply(this, arguments);
};

new PerformanceObserver((list) => {
  for (const e of list.getEntries()) line(['g', origin + e.startTime, e.duration]);
}).observe({ entryTypes: ['gc'] });

/**
 * The id in a person's alias key: `<prefix>:p:{<id>}:alias`, or `<prefix>:p:{#<hash>}<id>:alias`
 * for an id with braces (packages/interest-store/src/keys.ts `personTag`).
 */
const idOfAlias = (key) => {
  if (typeof key !== 'string' || !key.endsWith(':alias')) return undefined;
  const tag = key.slice(key.indexOf(':p:{') + 4, -':alias'.length);
  return tag.startsWith('#') ? tag.slice(tag.indexOf('}') + 1) : tag.slice(0, -1);
};

const load = Module._load;
const patched = new Set();
Module._load = function (request, ...rest) {
  const loaded = load.call(this, request, ...rest);
  if (request === 'pg' && !patched.has('pg') && loaded?.Client) {
    patched.add('pg');
    const query = loaded.Client.prototype.query;
    loaded.Client.prototype.query = function (config, ...args) {
      const ids = config?.name === STATEMENT ? config.values?.[0] : undefined;
      if (!Array.isArray(ids) || ids.length === 0) return query.call(this, config, ...args);
      const t = now();
      const reads = ids.map((id) => openRead(id, 's')).filter(Boolean);
      for (const r of reads) r.s = t;
      const done = () => {
        const e = now();
        for (const r of reads) r.e = e;
      };
      const cb = args.findIndex((a) => typeof a === 'function');
      if (cb >= 0) {
        const callback = args[cb];
        args[cb] = (...res) => {
          done();
          return callback(...res);
        };
        return query.call(this, config, ...args);
      }
      const result = query.call(this, config, ...args);
      result?.then?.(done, done);
      return result;
    };
  }
  const Redis = request === 'ioredis' ? (loaded?.default ?? loaded?.Redis ?? loaded) : undefined;
  // every copy of ioredis the process loads (pnpm may hold more than one)
  // the profile route's person reader (interest-store `createPersonReader`) sends ONE `MGET` of the alias and
  // state keys of every person asked for in a turn, through `sendCommand`: each alias key stamps its read
  if (Redis?.prototype?.sendCommand && !patched.has(Redis.prototype.sendCommand)) {
    const send = Redis.prototype.sendCommand;
    // the wrapper is what a second load of the same class finds: wrapped once
    Redis.prototype.sendCommand = function (command, ...rest) {
      const reads =
        command?.name === 'mget'
          ? (command.args ?? [])
              .map((key) => idOfAlias(String(key)))
              .filter((id) => id !== undefined)
              .map((id) => openRead(id, 'h'))
              .filter(Boolean)
          : [];
      const t = now();
      for (const r of reads) r.h = t;
      const result = send.call(this, command, ...rest);
      if (reads.length > 0)
        command.promise.then(
          () => reads.forEach((r) => (r.r = now())),
          () => reads.forEach((r) => (r.r = now())),
        );
      return result;
    };
    patched.add(Redis.prototype.sendCommand);
  }
  if (Redis?.prototype?.mgetBuffer && !patched.has(Redis)) {
    {
      patched.add(Redis);
      const mget = Redis.prototype.mgetBuffer;
      Redis.prototype.mgetBuffer = function (...keys) {
        const id = idOfAlias(keys[0]);
        const r = id === undefined ? undefined : openRead(id, 'h');
        if (r) r.h = now();
        const result = mget.apply(this, keys);
        if (r) {
          result.then(
            () => (r.r = now()),
            () => (r.r = now()),
          );
        }
        return result;
      };
    }
  }
  return loaded;
};
