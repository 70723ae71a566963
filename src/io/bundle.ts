/**
 * Loads one of the package's bundles (dist/cli-bundle/ or dist/library-bundle/, made by
 * scripts/bundle-cli.mjs) with V8's code
 * cache beside each script: the bytecode of what the build's training ran, so neither a command
 * nor a worker thread parses the bundle or compiles its functions again (~40 ms of a `run`, half
 * of a sweep worker's start). Node 20 caches no ES modules, so the scripts are tables of CommonJS
 * module functions run through vm.Script: main.cjs (what every command loads) and commands.cjs
 * (the modules commands and worker threads load when they run); the library's index.cjs.
 * A cache holds one V8's code: each is named for its V8 (`main.cjs.11.3.244.8-node.38.cache`), and
 * a node the build's cache was not made by writes its own when its process ends (below).
 */
import { createRequire } from 'node:module';
import type * as Fs from 'node:fs';
import type * as Path from 'node:path';
import type * as Vm from 'node:vm';
import type * as Url from 'node:url';
import type * as WorkerThreads from 'node:worker_threads';

// require: the ES module facades of node:fs and node:vm would read every export (fs's lazy streams among them).
const require = createRequire(import.meta.url);
const { existsSync, readFileSync, renameSync, rmSync, writeFileSync } = require('node:fs') as typeof Fs;
const { join } = require('node:path') as typeof Path;
const { Script } = require('node:vm') as typeof Vm;
const { fileURLToPath, pathToFileURL } = require('node:url') as typeof Url;
const { isMainThread } = require('node:worker_threads') as typeof WorkerThreads;

/**
 * The code cache of a bundle's script for the V8 running: V8 rejects a cache another version made
 * (its header names the version), so each node reads and writes its own.
 */
export const codeCacheFile = (script: string): string => `${script}.${process.versions.v8}.cache`;

/**
 * The two bundles, each a folder of scripts in the order they are loaded (a chunk the ones loaded
 * so far lack is in the next): the CLI and its workers, minified for start-up, and the library,
 * whose classes and functions keep their names for its users' stack traces and `err.name`.
 */
const BUNDLES = {
  cli: { dir: fileURLToPath(new URL('../cli-bundle/', import.meta.url)), scripts: ['main.cjs', 'commands.cjs'] },
  library: { dir: fileURLToPath(new URL('../library-bundle/', import.meta.url)), scripts: ['index.cjs'] },
} as const;

/** The worker modules (by path under src/) that the bundle holds, each as an entry chunk. */
export const BUNDLED_WORKERS = ['sweep/worker', 'check/soak-worker'] as const;
export type BundledWorker = (typeof BUNDLED_WORKERS)[number];

/** The bundle's chunk that is the worker module at `path` (`sweep/worker` is `sweep-worker.js`). */
export const workerChunk = (path: BundledWorker): string => `${path.replaceAll('/', '-')}.js`;

interface Module {
  exports: Record<string, unknown>;
}
type Factory = (exports: Module['exports'], require: (id: string) => unknown, module: Module, filename: string, dirname: string,
  importMetaUrl: string, importExternal: (specifier: string) => Promise<unknown>) => void;

/** An open bundle: its chunks by name (`main.js`, a worker's chunk), and its scripts so far by file. */
export interface Bundle {
  require(chunk: string): unknown;
  scripts: Map<string, Vm.Script>;
}

/**
 * Opens the bundle; each script is read and run when a chunk it holds is first required (the
 * build makes their code caches from `scripts`). A missing cache, or one V8 rejects (V8 flags),
 * only means compiling from source.
 */
export function loadBundle(which: keyof typeof BUNDLES = 'cli'): Bundle {
  const { dir, scripts: files } = BUNDLES[which];
  const scripts = new Map<string, Vm.Script>();
  const factories = new Map<string, Factory>();
  const modules = new Map<string, Module>();
  const nodeRequire = createRequire(join(dir, files[0]));
  const importMetaUrl = pathToFileURL(join(dir, files[0])).href;

  const load = (file: string) => {
    let cachedData: Buffer | undefined;
    try {
      cachedData = readFileSync(codeCacheFile(file));
    } catch {
      // None for this node: compiled from source.
    }
    // The scripts are ASCII (the build checks), which latin1 reads exactly and twice as fast as UTF-8.
    const script = new Script(readFileSync(file, 'latin1'), { filename: file, cachedData });
    scripts.set(file, script);
    if (cachedData === undefined) cacheAtExit(file, script);
    for (const [name, factory] of Object.entries(script.runInThisContext() as Record<string, Factory>)) factories.set(name, factory);
  };

  /** A chunk by its name (`./chunk-X.js`), else a package or Node module. */
  const requireAny = (id: string): unknown => {
    if (!id.startsWith('./')) return nodeRequire(id);
    const name = id.slice(2);
    let module = modules.get(name);
    if (!module) {
      for (let i = scripts.size; !factories.has(name) && i < files.length; i++) load(join(dir, files[i]!));
      module = { exports: {} };
      modules.set(name, module);
      // The import() a vm.Script lacks, for vega (src/io/external.ts).
      factories.get(name)!(module.exports, requireAny, module, join(dir, name), dir, importMetaUrl, (specifier) => import(specifier));
    }
    return module.exports;
  };

  return { require: (chunk) => requireAny(`./${chunk}`), scripts };
}

/**
 * A node other than the build's compiles the bundle at every start (~80 ms of a `run` on Node 24).
 * When the main thread's process ends, the scripts it read without a cache get one for this node,
 * with what the process compiled. The worker threads do not write (their pool ends them without an
 * exit of their own). The file appears whole (a rename) or not at all: a package folder the user
 * cannot write to keeps compiling from source.
 */
function cacheAtExit(file: string, script: Vm.Script): void {
  if (!isMainThread) return;
  process.once('exit', () => {
    const target = codeCacheFile(file), temporary = `${target}.${process.pid}.tmp`;
    // The build writes its own; another process may have written one meanwhile.
    if (existsSync(target)) return;
    try {
      writeFileSync(temporary, script.createCachedData());
      renameSync(temporary, target);
    } catch {
      rmSync(temporary, { force: true });
    }
  });
}
