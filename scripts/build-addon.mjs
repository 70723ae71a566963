#!/usr/bin/env node
/**
 * Builds the userfaultfd addon (native/uffd.c → native/build/Release/uffd.node) with node-gyp:
 * npm's own node-gyp when run from an npm script (npm_config_node_gyp), else `npx --yes node-gyp`.
 * Linux only. It never fails: on any error it prints one line saying why to stderr and exits 0, and
 * live mode then uses its software pager (src/live/uffd.ts reports the addon missing).
 *
 *   node scripts/build-addon.mjs            build quietly (node-gyp's output only on failure reasons)
 *   POSTCOPY_EMU_ADDON_VERBOSE=1 node ...   show node-gyp's output
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const TIMEOUT_MS = 180_000;
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(root, 'native');
const addon = join(nativeDir, 'build', 'Release', 'uffd.node');

function notBuilt(reason) {
  const oneLine = String(reason).replace(/\s+/g, ' ').trim();
  process.stderr.write(`postcopy-emu: the userfaultfd addon was not built (${oneLine}); live mode uses its software pager\n`);
  process.exit(0);
}

/** The last meaningful line of node-gyp's output: usually the error. */
function lastError(text) {
  const lines = String(text ?? '').split('\n').map((l) => l.trim()).filter(Boolean);
  const err = lines.filter((l) => /error/i.test(l) && !/^gyp ERR! (cwd|node -v|node-gyp -v|not ok|command|System|stack)/.test(l));
  return (err.at(0) ?? lines.at(-1) ?? '').slice(0, 300);
}

function main() {
  if (process.platform !== 'linux') notBuilt(`userfaultfd is Linux only, this is ${process.platform}`);
  if (!existsSync(join(nativeDir, 'binding.gyp'))) notBuilt('native/binding.gyp is missing');

  const args = ['rebuild', `--directory=${nativeDir}`];
  // Node's own headers, when this node ships them (e.g. /usr/include/node): build offline with them
  // rather than have node-gyp download them, unless a nodedir is configured already.
  const prefix = join(dirname(process.execPath), '..');
  if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) {
    args.push(`--nodedir=${prefix}`);
  }
  const gyp = process.env.npm_config_node_gyp;
  let command, argv, via;
  if (gyp && existsSync(gyp)) {
    // npm's node-gyp: bin/node-gyp.js (run it with this node), or an executable wrapper.
    if (/\.[cm]?js$/.test(gyp)) { command = process.execPath; argv = [gyp, ...args]; }
    else { command = gyp; argv = args; }
    via = 'npm_config_node_gyp';
  } else {
    command = 'npx';
    argv = ['--yes', 'node-gyp', ...args];
    via = 'npx node-gyp';
  }

  const verbose = !!process.env.POSTCOPY_EMU_ADDON_VERBOSE;
  const started = Date.now();
  const r = spawnSync(command, argv, {
    cwd: nativeDir,
    stdio: verbose ? 'inherit' : 'pipe',
    encoding: 'utf8',
    timeout: TIMEOUT_MS,
    killSignal: 'SIGKILL',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) {
    if (r.error.code === 'ETIMEDOUT') notBuilt(`${via} timed out after ${TIMEOUT_MS / 1000} s`);
    if (r.error.code === 'ENOENT') notBuilt(`${command} was not found`);
    notBuilt(`${via}: ${r.error.message}`);
  }
  if (r.signal) notBuilt(`${via} was killed by ${r.signal}`);
  if (r.status !== 0) {
    const why = verbose ? '' : lastError(`${r.stdout ?? ''}\n${r.stderr ?? ''}`);
    notBuilt(`${via} rebuild exited with ${r.status}${why ? `: ${why}` : ''}`);
  }
  if (!existsSync(addon)) notBuilt(`${via} succeeded but native/build/Release/uffd.node is missing`);
  process.stdout.write(`postcopy-emu: built the userfaultfd addon native/build/Release/uffd.node (${via}, ${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
}

try {
  main();
} catch (err) {
  notBuilt(err instanceof Error ? err.message : String(err));
}
process.exit(0);
