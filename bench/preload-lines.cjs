/**
 * What the bench's preloads share (bench/read-split.cjs, bench/stall-trace.cjs,
 * bench/tail-cause-preload.cjs): a file of one JSON array a line written once a second and at exit,
 * and the names of perf_hooks' GC kinds.
 */
const fs = require('node:fs');
const { setInterval } = require('node:timers');
const { constants } = require('node:perf_hooks');

/** Appends to `file`; returns the function that queues one line (a JSON array) for the next write. */
function lineWriter(file) {
  const out = fs.createWriteStream(file, { flags: 'a' });
  let lines = [];
  const flush = () => {
    if (lines.length > 0) out.write(lines.join('\n') + '\n');
    lines = [];
  };
  setInterval(flush, 1000).unref();
  process.on('exit', flush);
  return (line) => lines.push(JSON.stringify(line));
}

const GC_KINDS = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'mark-compact',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak-callbacks',
};

module.exports = { lineWriter, GC_KINDS };
