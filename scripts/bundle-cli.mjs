// Bundles the built CLI (dist/cli/main.js) with its dependencies into dist/cli-bundle/: one file
// to parse instead of ~150 modules to resolve, which is a third of a light command's start-up.
// Each command's modules stay a chunk of their own, loaded when the command runs. vega and
// vega-lite (the report) stay in node_modules; the workers load the unbundled dist/ modules.
import { build } from 'esbuild';

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

await build({
  entryPoints: ['dist/cli/main.js'],
  outdir: 'dist/cli-bundle',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minify: true,
  sourcemap: true,
  external: ['vega', 'vega-lite'],
  // CommonJS dependencies (commander, cli-progress, write-file-atomic) call require() for Node's
  // modules and read __filename.
  banner: {
    js: "import { createRequire as __createRequire } from 'node:module'; import { fileURLToPath as __fileURLToPath } from 'node:url'; "
      + 'const require = __createRequire(import.meta.url); const __filename = __fileURLToPath(import.meta.url);',
  },
  plugins: [noZodLocales],
  logLevel: 'warning',
});
