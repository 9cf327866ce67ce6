import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const PACKAGE = path.join(__dirname, '..');
const ROOT = path.join(PACKAGE, '..', '..');

/*
 * @pstream/client as it would be published: `pnpm pack` (which builds dist/ first) gives a tarball
 * that a project outside this workspace installs, requires, imports and type-checks through the
 * exports map — no src/, no workspace paths.
 */
describe('the packed @pstream/client', () => {
  jest.setTimeout(120_000);
  let dir: string;
  let consumer: string;
  const node = (file: string) => run(process.execPath, [file], { cwd: consumer });
  /** tsc on one file of the consumer, strict, with only the installed package's declarations. */
  const typeCheck = async (file: string) => {
    const tsconfig = {
      compilerOptions: {
        strict: true,
        target: 'es2022',
        module: 'nodenext',
        moduleResolution: 'nodenext',
        lib: ['es2023', 'dom'],
        types: [],
        noEmit: true,
      },
      files: [file],
    };
    await writeFile(path.join(consumer, 'tsconfig.json'), JSON.stringify(tsconfig));
    return run(path.join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json'], { cwd: consumer }).then(
      () => 'compiles',
      (err: { stdout: string }) => err.stdout,
    );
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'pstream-client-pack-'));
    await run('corepack', ['pnpm', 'pack', '--pack-destination', dir], {
      cwd: PACKAGE,
      env: { ...process.env, COREPACK_INTEGRITY_KEYS: '0' },
    });
    const tarball = (await readdir(dir)).find((f) => f.endsWith('.tgz'))!;
    consumer = path.join(dir, 'consumer');
    const installed = path.join(consumer, 'node_modules', '@pstream', 'client');
    await mkdir(installed, { recursive: true });
    await run('tar', ['xzf', path.join(dir, tarball), '-C', installed, '--strip-components=1']);
    // Its one dependency, as an install would put it beside it.
    await symlink(
      await realpath(path.join(PACKAGE, 'node_modules', 'openapi-fetch')),
      path.join(consumer, 'node_modules', 'openapi-fetch'),
    );
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('holds dist, the README and the CHANGELOG, and no source', async () => {
    const { stdout } = await run('find', ['.', '-type', 'f'], {
      cwd: path.join(consumer, 'node_modules', '@pstream', 'client'),
    });
    expect(stdout.split('\n').filter(Boolean).sort()).toEqual(
      [
        './CHANGELOG.md',
        './README.md',
        './dist/index.d.ts',
        './dist/index.js',
        './dist/schema.d.ts',
        './dist/schema.js',
        './package.json',
      ].sort(),
    );
  });

  it('loads with require and with import', async () => {
    await writeFile(
      path.join(consumer, 'a.cjs'),
      "const c = require('@pstream/client'); console.log(typeof c.createQueryClient, typeof c.QueryApiError);\n",
    );
    await writeFile(
      path.join(consumer, 'b.mjs'),
      "import { createQueryClient, QueryApiError } from '@pstream/client'; console.log(typeof createQueryClient, typeof QueryApiError);\n",
    );
    expect((await node('a.cjs')).stdout.trim()).toBe('function function');
    expect((await node('b.mjs')).stdout.trim()).toBe('function function');
  });

  it('type-checks a consumer with its declarations, refusing a wrong call', async () => {
    await writeFile(
      path.join(consumer, 'c.ts'),
      [
        "import { createQueryClient, QueryApiError, type Profile, type Rule } from '@pstream/client';",
        "const client = createQueryClient({ baseUrl: 'http://query-api:8081', token: 't' });",
        "export const profile: Promise<Profile> = client.profile('u-1');",
        "const rule: Rule = { stage: { in: ['loyal'] } };",
        'export const preview = client.audiences.preview(rule);',
        "export const code = (e: unknown) => (e instanceof QueryApiError ? e.body.error.code : '');",
        '// @ts-expect-error a stage the API does not have',
        "export const bad: Rule = { stage: { in: ['royal'] } };",
        '',
      ].join('\n'),
    );
    expect(await typeCheck('c.ts')).toBe('compiles');
  });

  it('compiles the README’s examples', async () => {
    const readme = await readFile(path.join(PACKAGE, 'README.md'), 'utf8');
    const examples = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
    expect(examples.length).toBeGreaterThanOrEqual(3);
    // One ES module (top-level await, as the examples use it); `process` is the one Node global they read.
    await writeFile(
      path.join(consumer, 'readme.mts'),
      ['declare const process: { env: Record<string, string | undefined> };', ...examples].join('\n'),
    );
    expect(await typeCheck('readme.mts')).toBe('compiles');
  });
});
