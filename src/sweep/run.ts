import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../io/errors.ts';
import { packageRoot, packageVersion } from '../io/package.ts';
import { prepareOutputDir, writeAtomic } from '../io/write.ts';
import { startSweepWorkers, type SweepWorkers } from './workers.ts';
import { appendRecord, readRecords, writeResults, RUNS, type RunRecord } from './output.ts';
import { scenarioOf, type Sweep, type SweepRun } from './spec.ts';
import type { ScenarioInput } from '../scenario/schema.ts';
import type { Shard } from './shard.ts';

export interface SweepOptions {
  dir: string;
  jobs: number;
  /**
   * Workers already started (the CLI starts them before it reads the sweep file, so they load
   * meanwhile); at most `jobs` of them run. The sweep stops them when it ends, as its own.
   */
  workers?: SweepWorkers;
  resume: boolean;
  shard: Shard | null;
  /** Wall-clock timestamps for manifest.json (host information, never part of results). */
  timestamp: () => string;
  /** Called after each finished run with (done, total, events so far). */
  progress?: (done: number, total: number, events: number) => void;
  /** Lines of runs.jsonl that were skipped on resume, each with its line number. */
  warn?: (message: string) => void;
  /** Aborted (SIGTERM, SIGINT): the workers stop, runs.jsonl keeps what finished, for --resume. */
  signal?: AbortSignal;
}

/** What a sweep (or shard) left in its directory. */
export interface SweepResult {
  /** Every run of the shard recorded so far, by index. */
  records: RunRecord[];
  /** Of those, the ones found in runs.jsonl (a resumed directory) rather than run now. */
  resumed: number;
  /** The signal stopped it before every run finished. */
  interrupted: boolean;
}

/** A hash of what the sweep runs: the resolved base scenario and every run's seed and axis values. */
export function sweepHash(sweep: Sweep): string {
  const runs = sweep.runs.map((r) => [r.index, r.seed, r.params]);
  return createHash('sha256').update(JSON.stringify({ base: sweep.base, runs })).digest('hex');
}

/** The fields of two JSON values that differ, as dotted paths (at most `max`). */
function changedPaths(a: unknown, b: unknown, path = '', out: string[] = [], max = 5): string[] {
  if (out.length >= max || JSON.stringify(a) === JSON.stringify(b)) return out;
  const objects = a !== null && b !== null && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b);
  if (!objects) {
    out.push(path || '(whole)');
    return out;
  }
  const keys = new Set([...Object.keys(a as object), ...Object.keys(b as object)]);
  for (const k of keys) changedPaths((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], path ? `${path}.${k}` : k, out, max);
  return out;
}

/**
 * `--resume` continues only the sweep the directory was started with: the same resolved
 * configurations (a changed sweep file, base file or preset would mix old and new results) and
 * the same shard.
 */
function checkResume(dir: string, sweep: Sweep, hash: string, shard: string | null): void {
  let old: { configurationsHash?: string; base?: unknown; shard?: string | null };
  try {
    old = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as typeof old;
  } catch {
    throw new UsageError(`cannot resume ${dir}: its manifest.json is missing or unreadable, so it cannot be shown to hold this sweep`);
  }
  if (old.configurationsHash !== hash) {
    const changed = old.base === undefined ? [] : changedPaths(old.base, sweep.base);
    const what = changed.length > 0 ? `the base scenario changed at ${changed.join(', ')}` : 'its configurations differ from this sweep file\'s';
    throw new UsageError(`cannot resume ${dir}: it was started with another sweep (${what}); use a new --out`);
  }
  if ((old.shard ?? null) !== shard) {
    throw new UsageError(`cannot resume ${dir}: it holds shard ${old.shard ?? 'none (the whole sweep)'}, not ${shard ?? 'the whole sweep'}`);
  }
}

/**
 * The tool's identity for manifest.json: version, and the git commit of a checkout (an installed
 * package has no .git of its own; git would answer with the enclosing project's commit).
 */
export function toolIdentity(): { tool: string; version: string; commit: string | null } {
  let commit: string | null = null;
  if (existsSync(join(packageRoot, '.git'))) {
    try {
      commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: packageRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      commit = null;
    }
  }
  return { tool: 'postcopy-emu', version: packageVersion(), commit };
}

/**
 * Runs a sweep (or one shard of it) into `dir`: each finished run is appended to runs.jsonl at
 * once, so a killed sweep resumes with `resume` and skips what is there; at the end runs.jsonl is
 * rewritten sorted, with runs.csv, metrics.md and manifest.json beside it.
 */
export async function runSweep(sweep: Sweep, o: SweepOptions): Promise<SweepResult> {
  prepareOutputDir(o.dir);
  const hash = sweepHash(sweep);
  const shard = o.shard ? `${o.shard.index}/${o.shard.count}` : null;
  if (!o.resume && existsSync(join(o.dir, RUNS))) {
    throw new UsageError(`${o.dir} already holds ${RUNS}: use --resume to continue it, or another --out`);
  }
  if (o.resume && existsSync(join(o.dir, RUNS))) checkResume(o.dir, sweep, hash, shard);
  const mine = sweep.runs.filter((r) => !o.shard || r.index % o.shard.count === o.shard.index % o.shard.count);
  const wanted = new Set(mine.map((r) => r.index));
  const read = readRecords(o.dir);
  for (const w of read.skipped) o.warn?.(`${w}; that run runs again`);
  const records = read.records.filter((r) => wanted.has(r.index));
  const resumed = records.length;
  const done = new Set(records.map((r) => r.index));
  const todo = mine.filter((r) => !done.has(r.index));
  const jobs = Math.max(1, Math.min(o.jobs, todo.length));
  const pool = o.workers ?? startSweepWorkers(jobs);
  pool.limit(jobs);
  // A configuration's scenario, made once for all its replications (each only sets the seed).
  const scenarios = new Map<number, ScenarioInput>();
  const scenario = (run: SweepRun) => {
    let s = scenarios.get(run.config);
    if (!s) scenarios.set(run.config, (s = scenarioOf(sweep, run)));
    return { ...s, seed: run.seed };
  };

  let events = 0;
  const aborted = new Promise<void>((resolve) => o.signal?.addEventListener('abort', () => resolve(), { once: true }));
  try {
    // Every run is posted first (the workers start on them at once), then the manifest (git's
    // commit among it) is written in the same tick: no run is recorded before it.
    const finished = Promise.all(todo.map(async (run) => {
      const outcome = await pool.run(scenario(run));
      // A run a bound stopped (no progress, event cap) failed; one the horizon cut is a result.
      const rec: RunRecord = 'error' in outcome ? { ...run, status: 'failed', error: outcome.error }
        : outcome.report.emulator.truncated?.by === 'limit' ? { ...run, status: 'failed', error: outcome.report.emulator.truncated.reason }
        : { ...run, status: 'ok', result: outcome.report };
      if (rec.result) events += rec.result.emulator.events;
      if (o.signal?.aborted) return;
      appendRecord(o.dir, rec);
      records.push(rec);
      o.progress?.(records.length, mine.length, events);
    }));
    const manifest = {
      ...toolIdentity(),
      sweep: sweep.spec,
      base: sweep.base,
      configurationsHash: hash,
      runs: sweep.runs.length,
      configurations: sweep.configs,
      shard,
      startedAt: o.timestamp(),
    };
    writeAtomic(join(o.dir, 'manifest.json'), JSON.stringify({ ...manifest, finishedAt: null }, null, 2) + '\n');
    await Promise.race([aborted, finished]);
    // Interrupted: runs.jsonl holds every finished run, the manifest says unfinished; --resume goes on.
    if (o.signal?.aborted) return { records: records.sort((a, b) => a.index - b.index), resumed, interrupted: true };
    writeResults(o.dir, records);
    const failed = records.filter((r) => r.status === 'failed').length;
    writeAtomic(join(o.dir, 'manifest.json'),
      JSON.stringify({ ...manifest, finishedAt: o.timestamp(), completed: records.length - failed, failed }, null, 2) + '\n');
    return { records: records.sort((a, b) => a.index - b.index), resumed, interrupted: false };
  } finally {
    await (o.signal?.aborted ? pool.terminate() : pool.close());
  }
}
