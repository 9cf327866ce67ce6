/**
 * Runs the four services and the demo stream side by side with one prefixed, colored log stream
 * (used by `pnpm start` after `infra:up`). Ctrl-C or SIGTERM stops every child; if any service
 * dies, the others are stopped too rather than leaving a half-running platform.
 */
import concurrently from 'concurrently';
import path from 'node:path';

const root = path.resolve(__dirname, '..');
const tsx = path.join(root, 'node_modules/.bin/tsx');
const service = (name: string, color: string) => ({
  name,
  prefixColor: color,
  command: `"${tsx}" services/${name}/src/main.ts`,
  cwd: root,
});

const withDemo = process.env.DEMO !== 'false';
const { result } = concurrently(
  [
    service('ingest', 'cyan'),
    service('scorer', 'magenta'),
    service('segmenter', 'yellow'),
    service('query-api', 'green'),
    ...(withDemo ? [{ name: 'demo', prefixColor: 'blue', command: `"${tsx}" scripts/demo.ts`, cwd: root }] : []),
  ],
  {
    prefix: 'name',
    padPrefix: true,
    // the demo finishing its backfill is fine; a service exiting is not
    killOthersOn: ['failure'],
    killSignal: 'SIGTERM',
  },
);

result.then(
  () => process.exit(0),
  () => process.exit(1),
);
