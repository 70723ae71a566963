/** Inputs for the report tests (real run results, sweep directories written by hand in the sweep format) and readers of their specs. */
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

/**
 * A one-axis sweep of `n` configurations (source.pivots = 1…n), one run each: copies of one real
 * result with latencies, histogram and downtime shifted per configuration so the series differ.
 */
export function writeWideSweep(dir: string, n: number): void {
  mkdirSync(dir, { recursive: true });
  const base = runResult(['timeline.samples=200']) as { downtime: number; 'postcopy-latency-dist': number[]; emulator: { 'fault-latency': { cdf: number[] } } };
  const pivots = Array.from({ length: n }, (_, i) => i + 1);
  const manifest = {
    tool: 'postcopy-emu', version: '0.1.0',
    sweep: { base: { preset: 'xen-2017-pure' }, axes: { 'source.pivots': pivots }, replications: 1, seed: 1 },
    runs: n, configurations: n,
  };
  const records = pivots.map((p, index) => {
    const result = structuredClone(base);
    result.downtime += index * 10;
    result.emulator['fault-latency'].cdf = result.emulator['fault-latency'].cdf.map((ns) => ns * (1 + index / 4));
    const dist = result['postcopy-latency-dist'];
    result['postcopy-latency-dist'] = dist.map((_, b) => dist[b - (index % 3)] ?? 0);
    return { index, config: index, replication: 0, seed: 100, params: { 'source.pivots': p }, status: 'ok', result };
  });
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2));
  writeFileSync(join(dir, 'runs.jsonl'), records.map((r) => JSON.stringify(r)).join('\n') + '\n');
}

/** A spec read back from JSON: read loosely, field by field. */
export type Json = Record<string, any>;

/** Every object in a spec, depth first. */
export function* objects(v: unknown): Generator<Json> {
  if (Array.isArray(v)) for (const x of v) yield* objects(x);
  else if (v !== null && typeof v === 'object') {
    yield v as Json;
    for (const x of Object.values(v)) yield* objects(x);
  }
}

/** The titles of the x and y channels, and the strips' row title (their shared y title). */
export const axisTitles = (spec: Json) =>
  [...new Set([...objects(spec)].flatMap((o) => [o['encoding']?.x?.title, o['encoding']?.y?.title, o['row']?.title]).filter((t) => typeof t === 'string'))];

/** The colour channels' ranges, one per view that has one. */
export const colourRanges = (spec: Json): string[][] => [...objects(spec)].flatMap((o) => (o['encoding']?.color ? [o['encoding'].color.scale.range] : []));

/** The widths in px of the bars in an SVG rendered by Vega (rect paths: M x,y h W v H h -W Z). */
export const barWidths = (svg: string) => [...svg.matchAll(/aria-roledescription="bar" d="M[\d.,-]+h([\d.]+)v/g)].map((m) => Number(m[1]));
