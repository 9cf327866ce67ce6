/**
 * Builds each service's main into one CommonJS file, .data/bundle/<service>/main.cjs (git-ignored),
 * for `BENCH_SERVICES_FROM=bundle` in bench/sustained.bench.ts.
 *
 * Why: under tsx every module of ours is compiled to CommonJS on its own, and every read of an
 * imported binding goes through an esbuild `__export` getter (a chain of them through `export *`
 * re-exports); a bundle hoists our modules into one scope, so those reads are plain variable reads.
 *
 * Only our own code (relative imports and @pstream/*) is bundled. Packages from node_modules stay
 * external, required by the absolute path they resolve to from the importing file — pnpm keeps each
 * package's dependencies beside that package, so a bare `require('pino')` from .data/ would not find
 * them; and pino's transports, pg's optional pg-native and the like keep working as they do under tsx.
 * In our files, `__dirname` is replaced by the file's own directory and `require.resolve(x)` resolves
 * from the file's own path, so public/, migrations/ and uplot are found as before. The bundles are
 * therefore tied to this checkout: rebuild after moving it, or after changing code.
 *
 * Usage: tsx scripts/build-services.ts [service…]   (default: all four)
 */
import { createRequire } from 'node:module';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
export const SERVICES = ['ingest', 'scorer', 'segmenter', 'query-api'] as const;
export const BUNDLE_DIR = path.join(ROOT, '.data', 'bundle');

/** The bundle of one service's main. */
export const bundlePath = (service: string): string => path.join(BUNDLE_DIR, service, 'main.cjs');

/** The part of esbuild's API used here (esbuild is tsx's own dependency, so its types are not ours to import). */
interface Message {
  text: string;
}
interface PluginBuild {
  onResolve(
    options: { filter: RegExp },
    callback: (args: {
      path: string;
      importer: string;
      resolveDir: string;
      kind: string;
      pluginData?: unknown;
    }) => Promise<{ path?: string; external?: boolean; errors?: Message[] } | undefined>,
  ): void;
  onLoad(
    options: { filter: RegExp },
    callback: (args: { path: string }) => Promise<{ contents: string; loader: 'ts' } | undefined>,
  ): void;
  resolve(
    path: string,
    options: { kind: string; importer: string; resolveDir: string; pluginData: unknown },
  ): Promise<{ path: string; errors: Message[] }>;
}
interface Esbuild {
  build(
    options: Record<string, unknown> & { plugins: { name: string; setup(build: PluginBuild): void }[] },
  ): Promise<unknown>;
}

// esbuild is tsx's own dependency (the compiler tsx runs our code through), not a root one.
const esbuild = createRequire(require.resolve('tsx/package.json'))('esbuild') as Esbuild;

const isOwn = (spec: string) => spec.startsWith('.') || path.isAbsolute(spec) || spec.startsWith('@pstream/');

/**
 * Our files as they behave under tsx: `__dirname` and `require.resolve` relative to the file itself,
 * packages from node_modules external (see the header), and `require.main === module` true only in
 * the entry (in a bundle every module shares the bundle's `module`, so a bench file imported for its
 * helpers would otherwise run its own main too).
 */
const ownFilesAsBefore = (entry: string) => ({
  name: 'pstream-own-files',
  setup(build: PluginBuild) {
    build.onResolve({ filter: /.*/ }, async (args) => {
      if (isOwn(args.path) || args.pluginData === 'external') return undefined;
      // resolved as a require() would (the CommonJS builds tsx loads), not by the importer's `import` (esbuild
      // would pick a package's ESM entry, which Node 20 then require()s)
      const resolved = await build.resolve(args.path, {
        kind: 'require-call',
        importer: args.importer,
        resolveDir: args.resolveDir,
        pluginData: 'external',
      });
      if (resolved.errors.length > 0) return { errors: resolved.errors };
      // Node builtins come back external already, by name.
      return { path: resolved.path, external: true };
    });
    build.onLoad({ filter: /\.ts$/ }, async (args) => {
      if (args.path.includes(`${path.sep}node_modules${path.sep}`)) return undefined;
      let contents = (await readFile(args.path, 'utf8'))
        .replace(/\b__dirname\b/g, JSON.stringify(path.dirname(args.path)))
        .replace(
          /\brequire\.resolve\(/g,
          `require('node:module').createRequire(${JSON.stringify(args.path)}).resolve(`,
        );
      if (args.path !== entry) contents = contents.replace(/\brequire\.main === module\b/g, 'false');
      return { contents, loader: 'ts' };
    });
  },
});

/** Bundles one entry file (a .ts of ours) into `outfile`, CommonJS for Node 20, with a source map beside it. */
export async function bundleEntry(entry: string, outfile: string): Promise<void> {
  const from = path.resolve(entry);
  await esbuild.build({
    entryPoints: [from],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    sourcemap: true,
    logLevel: 'warning',
    plugins: [ownFilesAsBefore(from)],
  });
}

export async function buildServices(services: readonly string[] = SERVICES): Promise<void> {
  for (const service of services) {
    const outfile = bundlePath(service);
    await bundleEntry(path.join(ROOT, 'services', service, 'src', 'main.ts'), outfile);
    console.log(`built ${path.relative(ROOT, outfile)}`);
  }
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const unknown = args.filter((a) => !(SERVICES as readonly string[]).includes(a));
  if (unknown.length > 0) {
    console.error(`unknown service(s): ${unknown.join(', ')} (known: ${SERVICES.join(', ')})`);
    process.exit(2);
  }
  buildServices(args.length > 0 ? args : SERVICES).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
