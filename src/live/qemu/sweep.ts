import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import YAML from 'yaml';
import { UsageError } from '../../io/errors.ts';
import { readBounded } from '../../io/read.ts';
import { prepareOutputDir, writeAtomic } from '../../io/write.ts';
import { ScenarioError } from '../../scenario/error.ts';
import { MAX_SCENARIO_BYTES } from '../../scenario/load.ts';
import type { Scenario } from '../../scenario/schema.ts';
import { parseScenario } from '../../scenario/validate.ts';
import { appendRecord, writeResults, RUNS, type RunRecord } from '../../sweep/output.ts';
import { toolIdentity } from '../../sweep/run.ts';
import { expandSweep, scenarioOf, type Sweep } from '../../sweep/spec.ts';
import { RealRunError } from './errors.ts';
import { realPlan } from './plan.ts';
import type { RealReport } from './result.ts';

/** Real runs take seconds to minutes each: a matrix beyond this is a mistake, not a plan. */
export const MAX_REAL_RUNS = 10_000;

/** A sweep file (the `sweep` command's format), with `replications` overridden when given. */
export function readRealSweep(path: string, replications: number | undefined): Sweep {
  let doc: unknown;
  try {
    doc = YAML.parse(readBounded(path, MAX_SCENARIO_BYTES, 'sweep file').toString('utf8'));
  } catch (e) {
    throw new ScenarioError('file', `cannot read sweep ${path}: ${(e as Error).message.split('\n')[0]!.replace(/:\s*$/, '')}`);
  }
  if (replications !== undefined && doc !== null && typeof doc === 'object' && !Array.isArray(doc)) doc = { ...doc, replications };
  const sweep = expandSweep(doc, dirname(resolve(path)));
  if (sweep.runs.length > MAX_REAL_RUNS) throw new ScenarioError('axes', `${sweep.runs.length} real runs; at most ${MAX_REAL_RUNS} (each runs two QEMUs for seconds or more)`);
  return sweep;
}

/**
 * Every configuration's scenario, checked against what a real run can do before the first QEMU
 * starts: a bad combination (multifd with postcopy, …) fails the whole sweep with exit 2.
 */
export function realScenarios(sweep: Sweep): Scenario[] {
  return sweep.runs.map((run) => {
    const s = parseScenario(scenarioOf(sweep, run));
    try {
      realPlan(s, { qemu: 'qemu', accel: 'tcg', uncapped: false, dir: '', port: 0 });
    } catch (e) {
      if (e instanceof ScenarioError) throw new ScenarioError(`axes.${e.path}`, `${e.detail} (configuration ${run.config}: ${JSON.stringify(run.params)})`);
      throw e;
    }
    return s;
  });
}

export interface RealSweepOptions {
  dir: string;
  run: (s: Scenario) => Promise<RealReport>;
  timestamp: () => string;
  progress?: (done: number, total: number) => void;
}

/**
 * Runs the matrix one run at a time (two QEMUs already fill a small host), appending each record
 * to runs.jsonl as it finishes; a failed run is a failed record with its reason. At the end
 * runs.jsonl, runs.csv, metrics.md and manifest.json are written as `sweep` writes them.
 */
export async function runRealSweep(sweep: Sweep, o: RealSweepOptions): Promise<RunRecord[]> {
  const scenarios = realScenarios(sweep);
  prepareOutputDir(o.dir);
  if (existsSync(join(o.dir, RUNS))) throw new UsageError(`${o.dir} already holds ${RUNS}: use another --out`);
  const manifest = { ...toolIdentity(), kind: 'real', sweep: sweep.spec, base: sweep.base, runs: sweep.runs.length, configurations: sweep.configs, startedAt: o.timestamp() };
  writeAtomic(join(o.dir, 'manifest.json'), JSON.stringify({ ...manifest, finishedAt: null }, null, 2) + '\n');
  const records: RunRecord[] = [];
  for (const [i, run] of sweep.runs.entries()) {
    let rec: RunRecord;
    try {
      rec = { ...run, status: 'ok', result: await o.run(scenarios[i]!) };
    } catch (e) {
      if (!(e instanceof RealRunError)) throw e;
      rec = { ...run, status: 'failed', error: e.message };
    }
    appendRecord(o.dir, rec);
    records.push(rec);
    o.progress?.(records.length, sweep.runs.length);
  }
  writeResults(o.dir, records);
  const failed = records.filter((r) => r.status === 'failed').length;
  writeAtomic(join(o.dir, 'manifest.json'), JSON.stringify({ ...manifest, finishedAt: o.timestamp(), completed: records.length - failed, failed }, null, 2) + '\n');
  return records;
}
