/**
 * Whole-process start-up (issue 9): the built CLI as a user runs it, median wall time of 5
 * fresh processes each, beside `node -e ''`. Needs dist/ (`npm run build`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { median } from '../src/metrics/latency.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
/** The built CLI: the cases that measure what a user runs spawn it. */
export const bin = `${root}bin/postcopy-emu.mjs`;
/** What `import 'postcopy-emu'` loads. */
const packageEntry = new URL((JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { main: string }).main, `file://${root}`).href;

/** Wall ms of one fresh process of `args` (node, or another program; `env`: its environment). */
export function wallMs(args: string[], program = process.execPath, env = process.env): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(program, args, { cwd: root, stdio: ['ignore', 'ignore', 'pipe'], env });
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr}`);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Median wall ms of `runs` fresh processes of `args` (see wallMs). */
export function medianMs(args: string[], runs = 5, program = process.execPath, env = process.env): number {
  return Math.round(median(Array.from({ length: runs }, () => wallMs(args, program, env))));
}

/**
 * The rows: what ran, its median, the target it is held to (ms, set when node -e '' took 60 ms
 * on this VM) and the time above node's own start-up, which does not drift with the VM's speed.
 */
export function startupRows(): { case: string; wallMs: number; targetMs?: number; aboveNodeMs?: number }[] {
  if (!existsSync(`${root}dist/cli-bundle/main.cjs`)) throw new Error('dist/ is missing: run `npm run build` first');
  const node = medianMs(['-e', '']);
  const row = (name: string, args: string[], targetMs?: number) => {
    const wallMs = medianMs(args);
    return { case: `startup: ${name}`, wallMs, targetMs, aboveNodeMs: wallMs - node };
  };
  // Node reads and parses NODE_EXTRA_CA_CERTS's bundle before any script runs (80 ms of a 145 ms
  // `node -e ''` on this VM, which sets it to the system bundle): shown apart, as it is node's.
  const { NODE_EXTRA_CA_CERTS: certs, ...bare } = process.env;
  return [
    { case: "startup: node -e ''", wallMs: node },
    ...(certs === undefined ? [] : [{ case: "startup: node -e '' without NODE_EXTRA_CA_CERTS", wallMs: medianMs(['-e', ''], 5, process.execPath, bare) }]),
    row('postcopy-emu presets', [bin, 'presets'], 200),
    row('postcopy-emu run storm-131072', [bin, 'run', 'bench/storm-131072.yaml'], 450),
    row('import the library', ['--input-type=module', '-e', `await import(${JSON.stringify(packageEntry)})`]),
  ];
}
