/**
 * `node bench/cpu-profile-summary.cjs <file.cpuprofile> [top]`: a profile's busy time (all but idle) by
 * kind — garbage collection, the AES-GCM cipher calls of sealing and opening, each package of ours, each
 * driver — and its functions with the most self time, as shares of busy time.
 */
const fs = require('node:fs');

const [file, topArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: node bench/cpu-profile-summary.cjs <file.cpuprofile> [top]');
  process.exit(2);
}
const profile = JSON.parse(fs.readFileSync(file, 'utf8'));
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const CIPHER = /^(createCipherBase|update|final|setAuthTag|getAuthTag|setAAD)$/;

function kind({ functionName: fn, url }) {
  if (fn === '(idle)') return 'idle';
  if (fn === '(garbage collector)') return 'garbage collection';
  if (CIPHER.test(fn) && (url === '' || url.includes('cipher'))) return 'AES-GCM calls (seal/open)';
  if (url.includes('kafkajs')) return 'kafkajs';
  if (url.includes('ioredis') || url.includes('redis-parser')) return 'ioredis';
  if (/\/(pg|pg-protocol|pg-types)\//.test(url)) return 'node-postgres';
  if (/fastify|find-my-way/.test(url)) return 'fastify';
  const ours = url.match(/\/(packages|services)\/([^/]+)\/src\//);
  if (ours) return `${ours[1]}/${ours[2]}`;
  if (url.includes('node_modules')) return 'other dependencies';
  return 'node core and native';
}

const selfTime = new Map();
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i];
  selfTime.set(id, (selfTime.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
}
const kinds = new Map();
const functions = new Map();
let total = 0;
for (const [id, us] of selfTime) {
  const frame = nodes.get(id).callFrame;
  total += us;
  const k = kind(frame);
  kinds.set(k, (kinds.get(k) ?? 0) + us);
  if (k === 'idle') continue;
  const where = `${frame.functionName || '(anonymous)'} ${frame.url.split('/').slice(-2).join('/')}:${frame.lineNumber + 1}`;
  functions.set(where, (functions.get(where) ?? 0) + us);
}
const busy = total - (kinds.get('idle') ?? 0);
const pct = (us) => `${((100 * us) / busy).toFixed(1)} %`;
console.log(`${file}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy`);
kinds.delete('idle');
for (const [k, us] of [...kinds].sort((a, b) => b[1] - a[1])) console.log(`  ${pct(us).padStart(7)}  ${k}`);
console.log('  top functions (self time):');
for (const [f, us] of [...functions].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg ?? 12)))
  console.log(`  ${pct(us).padStart(7)}  ${f}`);
