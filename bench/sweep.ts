/**
 * Issue #3 and #13's parallel rows: the 64-run (and 256-run) sweep of the xen-2017 storm through
 * the built CLI with one job and with two, and the same command with every run's guest cut to 64
 * pages: what the command costs besides its runs (node's start, the CLI, the workers' start, the
 * outputs), the part two jobs cannot share.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { median } from '../src/metrics/latency.ts';
import { bin } from './startup.ts';

/**
 * 64 runs of the xen-2017 storm: 4 ring sizes × 2 request kinds × 2 link rates × 4 replications
 * (256 with 16: a sweep long enough for two workers' warm-up to pay off). `cut`: each run's guest
 * is 64 pages with no mapping, so a run costs next to nothing and the command's own time is left.
 */
export function sweepSpec(runs: 64 | 256, cut = false): { dir: string; spec: string } {
  const dir = mkdtempSync(join(tmpdir(), 'pce-bench-'));
  const spec = join(dir, 'sweep.json');
  const small = cut ? { 'memory.pages': 64, 'mapper.mapping.kind': 'none', 'workload.region.start': 0, 'workload.region.count': 64 } : {};
  writeFileSync(spec, JSON.stringify({
    base: { preset: 'xen-2017-pure', set: { 'limits.stopAt': 'resume', ...small } },
    axes: { 'ring.capacity': [1, 8, 64, 512], 'mapper.request': ['page', 'range'], 'link.rateMbps': [1000, 10000] },
    replications: runs / 16,
    seed: 1,
  }));
  return { dir, spec };
}

interface Sweep {
  s: number;
  runs: number;
  events: number;
}

/** One sweep of `runs` with `jobs` workers through the built CLI: wall seconds and kernel events. */
function sweepOnce(runs: 64 | 256, jobs: number, cut = false): Sweep {
  const { dir, spec } = sweepSpec(runs, cut);
  // The built CLI, as a user runs it: its workers load the built bundle, not the sources through tsx.
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [bin, 'sweep', spec, '--out', join(dir, 'out'), '--jobs', String(jobs)], { encoding: 'utf8' });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`sweep --jobs ${jobs} failed: ${r.stderr}`);
  const records = readFileSync(join(dir, 'out', 'runs.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { result?: { emulator: { events: number } } });
  rmSync(dir, { recursive: true });
  return { s, runs: records.length, events: records.reduce((n, rec) => n + (rec.result?.emulator.events ?? 0), 0) };
}

/**
 * The sweep with one job and with two, in turn (`pairs` times, the order swapped each time), and
 * the speed-up as the median of the pairs': this VM's speed drifts by tens of percent within a
 * minute, which one case after the other turned into the speed-up. Rows: the median of each, and
 * of the cut sweep with one job, measured beside them (with two jobs too, in its note).
 */
export function sweepPairs(runs: 64 | 256, pairs: number): object[] {
  const one: Sweep[] = [], two: Sweep[] = [], cutOne: Sweep[] = [], cutTwo: Sweep[] = [];
  for (let i = 0; i < pairs; i++) {
    // Which goes first alternates: a drift inside a pair then favours neither.
    if (i % 2 === 1) two.push(sweepOnce(runs, 2));
    one.push(sweepOnce(runs, 1));
    if (i % 2 === 0) two.push(sweepOnce(runs, 2));
    cutOne.push(sweepOnce(runs, 1, true));
    cutTwo.push(sweepOnce(runs, 2, true));
  }
  const ms = (all: Sweep[]) => all.map((x) => Math.round(x.s * 1000)).join(' / ');
  const row = (name: string, all: Sweep[], extra: object) => {
    const s = median(all.map((x) => x.s));
    return { case: `sweep-${runs} ${name}`, runs: all[0]!.runs, events: all[0]!.events, wallMs: Math.round(s * 1000), eventsPerSec: Math.round(all[0]!.events / s), ...extra };
  };
  return [
    row('--jobs 1', one, { note: `${pairs} runs, in turn with --jobs 2: ${ms(one)} ms` }),
    row('--jobs 2', two, {
      ratio: Math.round(median(one.map((x, i) => x.s / two[i]!.s)) * 100) / 100,
      note: `${ms(two)} ms; ratio: the speed-up, --jobs 1 / --jobs 2, median of the ${pairs} pairs`,
    }),
    row('--jobs 1, 64-page guests', cutOne, { note: `${ms(cutOne)} ms: the command without its runs' simulation; with --jobs 2 ${ms(cutTwo)} ms (two jobs do not shorten it)` }),
  ];
}
