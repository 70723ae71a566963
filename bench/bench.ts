/**
 * npm run bench: each case runs in its own process (peak RSS is per case) and prints a table.
 * Targets (issue #2): ≥ 5 M events/s; 16 GiB storm ≤ 3 s wall; ≤ 32 bytes of RSS per guest page.
 * Issue #3: a 64-run sweep of the xen-2017 storm with --jobs 1 and --jobs 2 in turn (and a 256-run one), and the speed-up
 * beside a CPU-only loop's and a memory fill's on two workers (`calibration`, `calibration-memory`: what
 * this VM allows at the moment).
 * Issue #4: a soak of 10,000 random scenarios under the invariant checker (--jobs 2), 0 violations.
 * Issue #5: seed 001's 16 GiB stress guest, precopy (121 s simulated) and multifd.
 * Issue #9: whole-process start-up of the built CLI (median of 5) beside `node -e ''`.
 * Issue #13: the ring-bound storm against the SimPy peer, whole process, and the ratio; the pure
 * storm at 10 Gbit/s from 16 GiB to 1 TiB (≤ 10 s, ≤ 8 B of RSS a page, wall time linear in size);
 * `warm-*`: 24 runs in one process, the first against the fourth and the events/s of runs 17–24;
 * `jit-*`: TurboFan's compiles (their ms on the one compile thread) and deopts in a first run and in
 * a sweep worker, what the warm-up and the second job pay. Below the table: the speed-up the sweep
 * command's own start-up leaves two jobs (Amdahl, with and without each worker's compiles), and the
 * first/fourth ratio a run's cold construction leaves with no warm-up in the simulation.
 * `npm run bench -- NAME...` runs only the named cases (`startup` for the start-up rows).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { peerRows } from './peer.ts';
import { startupRows } from './startup.ts';

const here = fileURLToPath(new URL('.', import.meta.url));
const all = ['startup', 'peer', 'kernel', 'xen-2017-pure', 'warm-xen-2017-pure', 'warm-storm-131072', 'jit-xen-2017-pure', 'jit-storm-131072', 'jit-sweep-64', 'jit-soak-2000', 'storm-16g', 'storm-16g-range', 'storm-16g-10g', 'storm-64g-10g', 'storm-256g-10g', 'storm-1024g-10g', 'qemu-2022-stress-precopy', 'qemu-2022-stress-multifd', 'calibration', 'calibration-memory', 'calibration-cpus', 'sweep-64', 'sweep-256', 'soak-10000', 'live-idle', 'live-random', 'live-preempt', 'live-rtt', 'live-vs-model', 'live-vs-model-limited', 'live-vs-model-wire'];
const picked = process.argv.slice(2);
const cases = picked.length > 0 ? all.filter((c) => picked.includes(c)) : all;
const rows: Record<string, unknown>[] = [];
for (const c of cases) {
  if (c === 'startup' || c === 'peer') {
    rows.push(...(c === 'startup' ? startupRows() : peerRows()));
    continue;
  }
  const r = spawnSync(process.execPath, ['--import', 'tsx', `${here}case.ts`, c], { encoding: 'utf8' });
  if (r.status !== 0) {
    process.stderr.write(`bench case ${c} failed:\n${r.stderr}`);
    process.exit(1);
  }
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, unknown> | Record<string, unknown>[];
  rows.push(...(Array.isArray(out) ? out : [out]));
}
const cols = ['case', 'targetMs', 'aboveNodeMs', 'ratio', 'pages', 'runs', 'violations', 'status', 'downtimeMs', 'events', 'wallMs', 'cpuMs', 'eventsPerSec', 'pageOpsPerSec', 'compiles', 'compileMs', 'deopts', 'peakRssMiB', 'rssBytesPerPage', 'note'];
const cell = (v: unknown) => (v === undefined ? '-' : typeof v === 'number' ? v.toLocaleString('en-US') : String(v));
const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
const line = (cells: string[]) => `| ${cells.map((c, i) => c.padStart(widths[i]!)).join(' | ')} |`;
console.log(line(cols));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const r of rows) console.log(line(cols.map((c) => cell(r[c]))));
const cal = rows.find((r) => String(r.case).startsWith('calibration: CPU'))?.ratio as number | undefined;
const mem = rows.find((r) => String(r.case).startsWith('calibration: memory'))?.ratio as number | undefined;
const compileMs = rows.find((r) => r.case === 'jit: sweep-64 --jobs 1, its worker')?.compileMs as number | undefined;
for (const runs of [64, 256]) {
  const up = rows.find((r) => r.case === `sweep-${runs} --jobs 2`)?.ratio as number | undefined;
  if (!up) continue;
  console.log(`${runs === 64 ? '\n' : ''}sweep-${runs} speed-up with 2 jobs: ${up.toFixed(2)}×${cal ? ` (a CPU-only loop: ${cal.toFixed(2)}×)` : ''}${mem ? ` (a memory fill: ${mem.toFixed(2)}×)` : ''}`);
  // Amdahl: the command's start-up (the same sweep on 64-page guests) is paid once either way.
  const one = rows.find((r) => r.case === `sweep-${runs} --jobs 1`)!.wallMs as number;
  const start = rows.find((r) => r.case === `sweep-${runs} --jobs 1, 64-page guests`)!.wallMs as number;
  const half = start + (one - start) / 2;
  console.log(`  at most ${(one / half).toFixed(2)}× with everything but the command's ${start} ms start-up halved`
    + (runs === 64 && compileMs ? `; about ${(one / (half + compileMs)).toFixed(2)}× with each worker's ${compileMs} ms of TurboFan compiles on its own core` : ''));
}
for (const r of rows.filter((x) => String(x.case).startsWith('warm: '))) {
  const [first, fourth] = r.buildMs as [number, number];
  console.log(`${String(r.case).slice(6).replace(/ \(.*/, '')}: first / fourth ${r.ratio}×; with no warm-up in the simulation ${r.noWarmUp}×, and at 5 M events/s ${r.atTarget}× (building the Emulator: ${first} ms in run 1, ${fourth} ms in run 4)`);
}
const soakRow = rows.find((r) => r.case === 'soak-10000 --jobs 2');
if (soakRow) {
  console.log(`soak-10000: ${soakRow.violations} violations in ${((soakRow.wallMs as number) / 1000).toFixed(1)} s wall`);
  if (soakRow.violations !== 0) process.exit(1);
}
