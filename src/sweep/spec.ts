import { readBounded } from '../io/read.ts';
import { dirname, resolve } from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { streamSeed } from '../kernel/rng.ts';
import { MAX_SCENARIO_BYTES, applySets, presetInput, readScenarioFile } from '../scenario/load.ts';
import type { ScenarioInput } from '../scenario/schema.ts';
import { ScenarioError } from '../scenario/error.ts';
import { parseScenario } from '../scenario/validate.ts';
import { estimateRunBytes } from '../scenario/estimate.ts';

const scalar = z.union([z.number(), z.string(), z.boolean(), z.record(z.string(), z.unknown())]);

export const sweepSchema = z.object({
  base: z.union([
    z.object({ preset: z.string(), set: z.record(z.string(), scalar).default({}) }).strict(),
    z.object({ file: z.string(), set: z.record(z.string(), scalar).default({}) }).strict(),
  ], { error: 'must be { preset: NAME } or { file: PATH }, each with an optional set: { FIELD: VALUE }' }),
  axes: z.record(z.string(), z.array(scalar).min(1)).refine((a) => Object.keys(a).length > 0, 'needs at least one axis'),
  replications: z.number().int().min(1).max(100_000).default(1),
  seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(1),
}).strict();

export type SweepSpec = z.output<typeof sweepSchema>;

/** One run of a sweep: its place in the grid, its seed and the scenario it runs. */
export interface SweepRun {
  index: number;
  config: number;
  replication: number;
  seed: number;
  params: Record<string, unknown>;
}

/** A validated sweep with its base scenario resolved. */
export interface Sweep {
  spec: SweepSpec;
  base: ScenarioInput;
  runs: SweepRun[];
  configs: number;
  /** The largest configuration's memory estimate, for the number of workers that fit. */
  maxRunBytes: number;
}

function fail(e: { issues: { path: PropertyKey[]; message: string; code: string; keys?: string[] }[] }): never {
  const issue = e.issues[0]!;
  const path = [...issue.path, ...(issue.code === 'unrecognized_keys' ? [issue.keys![0]!] : [])].join('.');
  throw new ScenarioError(path, issue.code === 'unrecognized_keys' ? 'unknown field' : issue.message);
}

/** The most runs one sweep holds: 10^7 records of ~1 KiB each are already 10 GB of runs.jsonl. */
export const MAX_SWEEP_RUNS = 10_000_000;
/** Above this many configurations the CLI warns before it starts: hours of work, GBs of output. */
export const WARN_CONFIGURATIONS = 100_000;

/** Reads and validates a sweep file (YAML or JSON); every problem names its field (exit 2). */
export function readSweep(path: string, warn: (message: string) => void = () => {}): Sweep {
  let doc: unknown;
  try {
    doc = YAML.parse(readBounded(path, MAX_SCENARIO_BYTES, 'sweep file').toString('utf8'));
  } catch (e) {
    throw new ScenarioError('file', `cannot read sweep ${path}: ${(e as Error).message.split('\n')[0]!.replace(/:\s*$/, '')}`);
  }
  return expandSweep(doc, dirname(resolve(path)), warn);
}

/**
 * Expands a sweep into its runs: the cartesian product of the axes (first axis slowest) ×
 * replications. Replication i gets the same seed in every configuration (common random numbers),
 * so differences between configurations are not noise.
 */
export function expandSweep(doc: unknown, dir: string, warn: (message: string) => void = () => {}): Sweep {
  const r = sweepSchema.safeParse(doc);
  if (!r.success) fail(r.error);
  const spec = r.data;
  const sets = Object.entries(spec.base.set).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  const base = applySets('preset' in spec.base ? presetInput(spec.base.preset) : readScenarioFile(resolve(dir, spec.base.file)), sets);
  const axes = Object.entries(spec.axes);
  const configs = axes.reduce((n, [, values]) => n * values.length, 1);
  if (configs * spec.replications > MAX_SWEEP_RUNS) {
    throw new ScenarioError('axes', `${configs} configurations × ${spec.replications} replications = ${configs * spec.replications} runs; a sweep holds at most ${MAX_SWEEP_RUNS} (its records alone would fill the memory): split it into several sweep files`);
  }
  // Said before the expansion and the validation of every configuration, which take a while here.
  if (configs > WARN_CONFIGURATIONS) warn(`${configs} configurations × ${spec.replications} replications: a long sweep with a large output; --shard splits it`);
  const runs: SweepRun[] = [];
  for (let config = 0; config < configs; config++) {
    const params: Record<string, unknown> = {};
    let rest = config;
    for (let a = axes.length - 1; a >= 0; a--) {
      const [path, values] = axes[a]!;
      params[path] = values[rest % values.length];
      rest = Math.floor(rest / values.length);
    }
    const ordered = Object.fromEntries(axes.map(([p]) => [p, params[p]]));
    for (let replication = 0; replication < spec.replications; replication++) {
      runs.push({ index: runs.length, config, replication, seed: replicationSeed(spec.seed, replication), params: ordered });
    }
  }
  // Validate the base, then every configuration, so a bad value fails before anything runs.
  try {
    parseScenario(base);
  } catch (e) {
    if (e instanceof ScenarioError) throw new ScenarioError(`base.${e.path}`, e.detail);
    throw e;
  }
  let maxRunBytes = 0;
  for (let c = 0; c < configs; c++) {
    const run = runs[c * spec.replications]!;
    try {
      maxRunBytes = Math.max(maxRunBytes, estimateRunBytes(parseScenario(scenarioOf({ base }, run))));
    } catch (e) {
      if (e instanceof ScenarioError) throw new ScenarioError(`axes.${e.path}`, `${e.detail} (configuration ${c}: ${JSON.stringify(run.params)})`);
      throw e;
    }
  }
  return { spec, base, runs, configs, maxRunBytes };
}

/** The seed of replication i, derived from the sweep's seed by hashing. */
export function replicationSeed(seed: number, replication: number): number {
  return streamSeed(seed, `replication-${replication}`) >>> 0;
}

/** The scenario one run executes: the base, its axis values, its replication's seed. */
export function scenarioOf(sweep: Pick<Sweep, 'base'>, run: SweepRun): ScenarioInput {
  const sets = Object.entries(run.params).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  return { ...applySets(sweep.base, sets), seed: run.seed };
}
