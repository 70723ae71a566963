/** Inputs for the report tests: real run results, and a sweep directory written by hand in the sweep format. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runScenario } from '../src/run.ts';
import { applySets, presetInput } from '../src/scenario/load.ts';

/** A 64 MiB guest whose device model storms an 8-slot ring: about 0.3 s of wall time. */
export const BASE_SETS = ['memory.pages=16384', 'workload.region={start: 4096, count: 4096}'];

/** One run's result as `run --json` writes it (wall-clock figures dropped: they vary). */
export function runResult(sets: readonly string[], seed = 1): Record<string, unknown> {
  const { report } = runScenario({ ...applySets(presetInput('xen-2017-pure'), [...BASE_SETS, ...sets]), seed });
  const { host: _host, ...emulator } = report.emulator;
  return { ...report, emulator };
}

export const AXES = { 'ring.capacity': [2, 8], 'mapper.request': ['page', 'range'] };

/**
 * A 2 × 2 sweep with 2 replications in manifest.json + runs.jsonl. Run 7 (ring.capacity=8,
 * mapper.request=range, replication 1) failed, and a torn line ends runs.jsonl, as a killed
 * sweep leaves it.
 */
export function writeSweep(dir: string, o: { timeline: boolean }): void {
  mkdirSync(dir, { recursive: true });
  const sets = o.timeline ? ['timeline.samples=200'] : [];
  const manifest = {
    tool: 'postcopy-emu', version: '0.1.0', commit: 'abcdef0123456789',
    sweep: { base: { preset: 'xen-2017-pure', set: { 'memory.pages': 16384 } }, axes: AXES, replications: 2, seed: 1 },
    runs: 8, configurations: 4,
  };
  const records = [];
  let index = 0;
  for (const capacity of AXES['ring.capacity']) {
    for (const request of AXES['mapper.request']) {
      for (let replication = 0; replication < 2; replication++) {
        const seed = 100 + replication;
        const params = { 'ring.capacity': capacity, 'mapper.request': request };
        const head = { index, config: Math.floor(index / 2), replication, seed, params };
        records.push(index === 7
          ? { ...head, status: 'failed', error: 'worker crashed: out of memory\n    at Worker.run' }
          : { ...head, status: 'ok', result: runResult([...sets, `ring.capacity=${capacity}`, `mapper.request=${request}`], seed) });
        index++;
      }
    }
  }
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2));
  writeFileSync(join(dir, 'runs.jsonl'), records.map((r) => JSON.stringify(r)).join('\n') + '\n{"index": 8, "conf');
}
