import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type * as Esbuild from 'esbuild';
import { packageRoot } from '../io/package.ts';

/** Inputs of a bundle by path, each as "size:mtime"; the bundle's first line holds them. */
type Stamps = Record<string, string>;

const stamp = (path: string): string => {
  try {
    const s = statSync(path);
    return `${s.size}:${s.mtimeMs}`;
  } catch {
    return 'missing';
  }
};

/** The bundle's inputs as recorded on its first line, or null when there is no usable bundle. */
function recorded(file: string): Stamps | null {
  try {
    const text = readFileSync(file, 'utf8');
    return JSON.parse(text.slice(3, text.indexOf('\n'))) as Stamps;
  } catch {
    return null;
  }
}

/**
 * Source runs only (tests, bench): the TS worker module at `module` and all it imports as one
 * JS file, built by esbuild (a development dependency, loaded here so the package never needs
 * it). Workers do not inherit tsx's loader; loading ~160 modules through it took each worker
 * 0.7 s, and two starting at once 3 s, against 0.3 s for the bundle. Kept under
 * node_modules/.cache and rebuilt when an input's size or mtime changes.
 */
export function bundledWorker(module: URL): URL {
  const entry = fileURLToPath(module);
  const dir = join(packageRoot, 'node_modules/.cache/postcopy-emu');
  // By checkout too: checkouts may share a node_modules.
  const name = `${relative(packageRoot, entry).replace(/\.ts$/, '').replace(/[/\\]/g, '-')}-${createHash('sha256').update(packageRoot).digest('hex').slice(0, 8)}`;
  const file = join(dir, `${name}.mjs`);
  const old = recorded(file);
  if (old && Object.keys(old).includes(entry) && Object.entries(old).every(([p, s]) => stamp(p) === s)) return pathToFileURL(file);
  const { buildSync } = createRequire(import.meta.url)('esbuild') as typeof Esbuild;
  const out = buildSync({
    entryPoints: [entry], bundle: true, format: 'esm', platform: 'node', target: 'node20',
    absWorkingDir: packageRoot, write: false, metafile: true, logLevel: 'warning',
    // CommonJS dependencies call require().
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  });
  const stamps: Stamps = {};
  for (const p of Object.keys(out.metafile.inputs)) stamps[join(packageRoot, p)] = stamp(join(packageRoot, p));
  mkdirSync(dir, { recursive: true });
  // Renamed into place: another process (vitest runs files in parallel) never reads half a file.
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `// ${JSON.stringify(stamps)}\n${out.outputFiles[0]!.text}`);
  renameSync(tmp, file);
  return pathToFileURL(file);
}
