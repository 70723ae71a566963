// Bundles the built CLI (dist/cli/main.js), the sweep and soak workers and the library (dist/index.js)
// with their dependencies into two CommonJS scripts for dist/io/bundle.js to load with V8's code cache (Node 20 caches no
// ES modules): main.cjs, what every command loads (commander, the commands' options), and
// commands.cjs, the modules commands and workers load when they run (zod, the YAML parser, the
// emulator...). Each is a table of esbuild's chunks, as module functions. It then runs a few
// commands on them to make each script's code cache (SCRIPT.cache): a command or a worker neither
// parses nor compiles what those ran, and `presets` reads only main.cjs and its small cache. vega
// and vega-lite (the report) stay in node_modules. The package's entry, dist/library.js, is written
// here: the library's exports from the bundle (a plain import of dist/index.js reads ~200 ES
// modules, zod's locales among them, and compiles them all: 300 ms).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { build, transform } from 'esbuild';
import { BUNDLED_WORKERS, workerChunk } from '../dist/io/bundle.js';

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

const out = 'dist/cli-bundle';
const { outputFiles, metafile } = await build({
  // Entry chunks: main.js, the library's index.js, and each worker by its chunk's name (sweep-worker.js).
  entryPoints: [{ in: 'dist/cli/main.js', out: 'main' }, { in: 'dist/index.js', out: 'index' }, ...BUNDLED_WORKERS.map((w) => ({ in: `dist/${w}.js`, out: workerChunk(w).slice(0, -3) }))],
  outdir: out,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minifyWhitespace: true,
  minifySyntax: true,
  // Names stay readable in stack traces and `.name` (a library user's `err.name`, `constructor.name`).
  keepNames: true,
  write: false,
  metafile: true,
  external: ['vega', 'vega-lite'],
  // The loader passes in the URL of the scripts (they sit where the chunks would).
  define: { 'import.meta.url': '__importMetaUrl' },
  plugins: [noZodLocales, lazyChildProcess, externalImport],
  logLevel: 'warning',
});

/** The chunks main.js imports statically: what every command loads. */
const first = new Set();
const visit = (path) => {
  if (first.has(path)) return;
  first.add(path);
  for (const i of metafile.outputs[path].imports) if (i.kind === 'import-statement' && !i.external) visit(i.path);
};
visit(`${out}/main.js`);

// Each chunk as a CommonJS module function; its `import()` of another chunk becomes a require()
// of it, which the loader answers from the table, loading commands.cjs on first need.
const tables = { 'main.cjs': [], 'commands.cjs': [] };
for (const file of outputFiles) {
  const { code } = await transform(file.text, { format: 'cjs', supported: { 'dynamic-import': false }, minifyWhitespace: true, minifySyntax: true, keepNames: true, platform: 'node', target: 'node20' });
  const name = basename(file.path);
  tables[first.has(`${out}/${name}`) ? 'main.cjs' : 'commands.cjs'].push(
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

// The package's entry: what dist/index.js exports, taken from the bundle's index.js chunk.
const names = metafile.outputs[`${out}/index.js`].exports;
if (names.length < 40) throw new Error(`the library chunk exports only ${names.length} names`);
writeFileSync('dist/library.js', [
  '// The library (dist/index.js, typed by dist/index.d.ts) from the package\'s bundle: made by scripts/bundle-cli.mjs.',
  "import { loadBundle } from './io/bundle.js';",
  `export const { ${names.join(', ')} } = loadBundle().require('index.js');`,
  '',
].join('\n'));

/**
 * The training: the commands whose start-up matters (listing, printing and running scenarios,
 * the storm's ring-bound demand paging among them) and what the workers run (a soak in-process;
 * a sweep's run is a `run`), their output dropped.
 */
const { loadBundle } = await import('../dist/io/bundle.js');
const bundle = loadBundle();
const { main } = bundle.require('main.js');
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
} finally {
  rmSync(dir, { recursive: true, force: true });
}
// A library user's first steps: the import, a small run, its report.
const lib = bundle.require('index.js');
lib.buildReport(new lib.Emulator({ memory: { pages: 1024 }, workload: { kind: 'sequential', vcpus: 1 } }).run());
for (const [file, script] of bundle.scripts) writeFileSync(`${file}.cache`, script.createCachedData());
