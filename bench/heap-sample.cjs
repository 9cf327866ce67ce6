/**
 * A preload (`NODE_OPTIONS="--require bench/heap-sample.cjs" pnpm bench:reads`) that measures the bytes
 * an HTTP server process allocates per request: from its HEAP_SAMPLE_AFTER-th request (2 500; after
 * the bench's answer comparison) over HEAP_SAMPLE_COUNT requests (4 000), V8's sampling heap profiler
 * with the objects scavenges and mark-compacts collected kept (so short-lived garbage counts, as the
 * young generation sees it), then one `HEAP` JSON line on stderr: the process, bytes per request,
 * and the frames that allocated the most (self bytes per request, by function and file). An estimate:
 * one sample per 128 bytes on average. Processes that never serve HTTP print nothing.
 */
const http = require('node:http');
const inspector = require('node:inspector');

const AFTER = Number(process.env.HEAP_SAMPLE_AFTER ?? 2500);
const COUNT = Number(process.env.HEAP_SAMPLE_COUNT ?? 4000);
const proc = `${(process.argv[1] ?? '').split('/').slice(-4).join('/')}:${process.pid}`;
let requests = 0;
let session;

function report(profile) {
  const leaves = new Map();
  let total = 0;
  const walk = (node) => {
    total += node.selfSize;
    const f = node.callFrame;
    const key = `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-3).join('/')}:${f.lineNumber + 1}`;
    leaves.set(key, (leaves.get(key) ?? 0) + node.selfSize);
    for (const c of node.children) walk(c);
  };
  walk(profile.head);
  const top = [...leaves]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 25)
    .map(([frame, bytes]) => [frame, Math.round(bytes / COUNT)]);
  process.stderr.write(
    `HEAP ${JSON.stringify({ proc, requests: COUNT, bytesPerRequest: Math.round(total / COUNT), top })}\n`,
  );
}

const emit = http.Server.prototype.emit;
http.Server.prototype.emit = function (event, request) {
  if (event === 'request' && !request.url?.startsWith('/readyz')) {
    requests++;
    if (requests === AFTER) {
      session = new inspector.Session();
      session.connect();
      session.post('HeapProfiler.startSampling', {
        samplingInterval: 128,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      });
    } else if (requests === AFTER + COUNT) {
      session.post('HeapProfiler.stopSampling', (err, result) => {
        if (err) process.stderr.write(`HEAP ${JSON.stringify({ proc, error: String(err) })}\n`);
        else report(result.profile);
        session.disconnect();
      });
    }
  }
  return emit.apply(this, arguments);
};
