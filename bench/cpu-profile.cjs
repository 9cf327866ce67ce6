/**
 * A preload (`NODE_OPTIONS="--require $PWD/bench/cpu-profile.cjs" CPU_PROFILE_DIR=/tmp/prof pnpm
 * bench:sustained`) that samples a process's CPU from start to exit and writes one `.cpuprofile` per
 * process into CPU_PROFILE_DIR, named after the service (`scorer-<pid>.cpuprofile`) or the script.
 * Node refuses `--cpu-prof` in NODE_OPTIONS, and the benches start the services themselves, so this is how
 * every service of a `bench:sustained` run gets profiled at once. Open the files in Chrome's DevTools or
 * summarise them with `node bench/cpu-profile-summary.cjs <file>`. Main threads only (not ingest's workers).
 * `CPU_PROFILE_ONLY=ingest` (a comma-separated list of names) profiles only those processes: the sampling costs
 * each profiled process CPU, and a whole pipeline profiled at once on two cores falls behind.
 */
const fs = require('node:fs');
const inspector = require('node:inspector');
const path = require('node:path');

const dir = process.env.CPU_PROFILE_DIR ?? '.data/cpu-profiles';
const service = process.argv.find((a) => /services\/[^/]+\/src\/main\.ts$/.test(a));
const name = service ? service.replace(/.*services\/([^/]+)\/.*/, '$1') : path.basename(process.argv[1] ?? 'node');
// CPU_PROFILE_ONLY=ingest,scorer: profile only these (service or script names); the others run unprofiled.
const only = process.env.CPU_PROFILE_ONLY?.split(',').map((s) => s.trim());
const session = only === undefined || only.includes(name) ? new inspector.Session() : undefined;
session?.connect();
session?.post('Profiler.enable');
session?.post('Profiler.setSamplingInterval', { interval: 500 });
session?.post('Profiler.start');
process.on('exit', () => {
  if (session === undefined) return;
  // An in-thread session answers synchronously, so the file is written before the process ends.
  session.post('Profiler.stop', (err, res) => {
    if (err) return;
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `${name}-${process.pid}.cpuprofile`), JSON.stringify(res.profile));
  });
});
