// Bundles the built code with its dependencies into CommonJS scripts for dist/io/bundle.js to load
// with V8's code cache (Node 20 caches no ES modules), each a table of esbuild's chunks as module
// functions. The CLI and the sweep and soak workers (dist/cli-bundle/, minified): main.cjs, what
// every command loads (commander, the commands' options), and commands.cjs, what commands and
// workers load when they run (zod, the YAML parser, the emulator...). The library
// (dist/library-bundle/index.cjs, names kept) and the package's entry that exports it,
// dist/library.js: a plain import of dist/index.js reads ~200 ES modules, zod's locales among
// them, and compiles them all (225 ms). It then runs a few commands and a library run on them to
// make each script's code cache (SCRIPT.V8-VERSION.cache): a command, a worker or a library user neither
// parses nor compiles what those ran, and `presets` reads only main.cjs and its small cache. vega
// and vega-lite (the report) stay in node_modules.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { build, transform } from 'esbuild';
import { BUNDLED_WORKERS, codeCacheFile, workerChunk } from '../dist/io/bundle.js';

/**
 * zod's 40-odd message locales (260 KB of its 450 KB, parsed at every start) are re-exported as
 * `z.locales`, which nothing here uses; English, the default, is imported on its own.
 */
const noZodLocales = {
  name: 'no-zod-locales',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (a) => (a.importer.includes('/zod/') ? { path: 'zod-locales', namespace: 'stub' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'stub' }, () => ({ contents: 'export {};', loader: 'js' }));
  },
};

/**
 * commander requires child_process (and with it net and stream, ~7 ms) when it loads, for
 * executable subcommands, which this CLI has none of: it gets the module on first use instead.
 */
const lazyChildProcess = {
  name: 'lazy-child-process',
  setup(b) {
    b.onResolve({ filter: /^(node:)?child_process$/ }, (a) => (a.importer.includes('/commander/') ? { path: 'child_process', namespace: 'lazy' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'lazy' }, () => ({
      contents: 'module.exports = new Proxy({}, { get: (_, key) => require("node:child_process")[key] });',
      loader: 'js',
    }));
  },
};

/** A vm.Script cannot import(): vega comes through the import() the loader passes in. */
const externalImport = {
  name: 'external-import',
  setup(b) {
    b.onLoad({ filter: /[\\/]dist[\\/]io[\\/]external\.js$/ }, () => ({
      contents: 'export const importExternal = (specifier) => __importExternal(specifier);',
      loader: 'js',
    }));
  },
};

/**
 * Bundles `entryPoints` into `out` as scripts of CommonJS module functions, one table of esbuild's
 * chunks per script (`scripts(metafile)` gives the function naming each chunk's); returns esbuild's metafile.
 */
async function bundle(out, entryPoints, minify, scripts) {
  // Minified: the CLI and its workers start faster. Not: the library's names stay readable in
  // its users' stack traces, and keepNames keeps `.name` where esbuild renames (`ScenarioError.name`).
  // Short lines either way: node prints the source line an uncaught exception was thrown at, and
  // a bundle on a few long lines put ~300 KB of code on the terminal.
  const shape = { ...(minify ? { minify: true } : { minifyWhitespace: true, minifySyntax: true, keepNames: true }), lineLimit: 120 };
  const { outputFiles, metafile } = await build({
    entryPoints,
    outdir: out,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    ...shape,
    write: false,
    metafile: true,
    external: ['vega', 'vega-lite'],
    // The loader passes in the URL of the scripts (they sit where the chunks would).
    define: { 'import.meta.url': '__importMetaUrl' },
    plugins: [noZodLocales, lazyChildProcess, externalImport],
    logLevel: 'warning',
  });
  // Each chunk as a CommonJS module function; its `import()` of another chunk becomes a require()
  // of it, which the loader answers from the table, loading the next script on first need.
  const tables = {}, scriptOf = scripts(metafile);
  for (const file of outputFiles) {
    const { code } = await transform(file.text, { format: 'cjs', supported: { 'dynamic-import': false }, ...shape, platform: 'node', target: 'node20' });
    const name = basename(file.path);
    (tables[scriptOf(`${out}/${name}`)] ??= []).push(
      `${JSON.stringify(name)}: function (exports, require, module, __filename, __dirname, __importMetaUrl, __importExternal) {${code}}`);
  }
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  for (const [script, chunks] of Object.entries(tables)) {
    const text = `({${chunks.join(',\n')}})`;
    // dist/io/bundle.js reads the scripts as latin1 (a one-byte string, no UTF-8 decoding).
    if (/[^\x00-\x7f]/.test(text)) throw new Error(`${out}/${script} is not ASCII: escape the non-ASCII characters in its sources`);
    writeFileSync(join(out, script), text);
  }
  return metafile;
}

/** The chunks main.js imports statically (what every command loads) go in main.cjs, the rest in commands.cjs. */
const cliScripts = (metafile) => {
  const first = new Set();
  const visit = (p) => {
    if (first.has(p)) return;
    first.add(p);
    for (const i of metafile.outputs[p].imports) if (i.kind === 'import-statement' && !i.external) visit(i.path);
  };
  visit('dist/cli-bundle/main.js');
  return (path) => (first.has(path) ? 'main.cjs' : 'commands.cjs');
};
// Entry chunks: main.js, and each worker by its chunk's name (sweep-worker.js).
await bundle('dist/cli-bundle', [{ in: 'dist/cli/main.js', out: 'main' }, ...BUNDLED_WORKERS.map((w) => ({ in: `dist/${w}.js`, out: workerChunk(w).slice(0, -3) }))], true, cliScripts);
const library = await bundle('dist/library-bundle', [{ in: 'dist/index.js', out: 'index' }], false, () => () => 'index.cjs');

// The package's entry: what dist/index.js exports, taken from the library bundle's index.js chunk.
const names = library.outputs['dist/library-bundle/index.js'].exports;
if (names.length < 40) throw new Error(`the library chunk exports only ${names.length} names`);
writeFileSync('dist/library.js', [
  '// The library (dist/index.js, typed by dist/index.d.ts) from the package\'s bundle: made by scripts/bundle-cli.mjs.',
  "import { loadBundle } from './io/bundle.js';",
  `export const { ${names.join(', ')} } = loadBundle('library').require('index.js');`,
  '',
].join('\n'));

/**
 * The training: the commands whose start-up matters (listing, printing and running scenarios,
 * the storm's ring-bound demand paging among them) and what the workers run (a soak in-process;
 * a sweep's run is a `run`), their output dropped.
 */
const { loadBundle } = await import('../dist/io/bundle.js');
const cli = loadBundle(), libraryBundle = loadBundle('library');
const { main } = cli.require('main.js'), lib = libraryBundle.require('index.js');
const dir = mkdtempSync(join(tmpdir(), 'postcopy-emu-train-'));
try {
  const scenario = join(dir, 'storm.yaml');
  writeFileSync(scenario, [
    'name: train-storm',
    'memory: { pages: 16384, outstanding: { kind: all } }',
    'ring: { capacity: 8 }',
    'source: { policy: demand }',
    'mapper: { mapping: { kind: buckets, bucketPages: 8, count: 2048 }, order: random, request: page }',
    'workload: { kind: idle, vcpus: 1 }',
    'limits: { stopAt: resume }',
  ].join('\n'));
  const commands = [['presets'], ['presets', 'xen-2017-hybrid'], ['run', scenario], ['soak', '--seeds', '20', '--jobs', '1']];
  for (const args of commands) {
    const code = await main(['node', 'postcopy-emu', '--quiet', ...args], () => {});
    if (code !== 0) throw new Error(`training: postcopy-emu ${args.join(' ')} exited with ${code}`);
  }
  // A library user's first steps: the import, the storm read and run, its report.
  lib.buildReport(new lib.Emulator(lib.readScenarioFile(scenario)).run());
} finally {
  rmSync(dir, { recursive: true, force: true });
}
for (const [file, script] of [...cli.scripts, ...libraryBundle.scripts]) writeFileSync(codeCacheFile(file), script.createCachedData());
