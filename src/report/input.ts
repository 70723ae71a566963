import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { UsageError } from '../io/errors.ts';
import { LATENCY_BUCKETS } from '../metrics/latency.ts';
import { CDF_QUANTILES } from '../metrics/report.ts';

const num = z.number();

const timelineSchema = z.object({
  intervalNs: num,
  t: z.array(num),
  ringOccupancy: z.array(num),
  pagesResident: z.array(num),
  vcpusBlocked: z.array(num),
  bytesTransferred: z.array(num),
});

/**
 * The fields of a run result (`run --json`) that the report reads. Loose objects keep every
 * other field, so `--metric` can name any of them.
 */
const runResultSchema = z.looseObject({
  status: z.string(),
  'total-time': num,
  downtime: num,
  'postcopy-latency-dist': z.array(num).length(LATENCY_BUCKETS),
  ram: z.looseObject({ transferred: num, total: num, 'page-size': num }),
  emulator: z.looseObject({
    scenario: z.string(),
    seed: num,
    'fault-latency': z.looseObject({ count: num, p50: num, p99: num, max: num, cdf: z.array(num).length(CDF_QUANTILES.length) }),
    ring: z.looseObject({ capacity: num, 'max-occupancy': num, 'time-full': num, ebusy: num }),
    timeline: timelineSchema.optional(),
  }),
});

const manifestSchema = z.looseObject({
  tool: z.literal('postcopy-emu'),
  version: z.string(),
  sweep: z.looseObject({
    base: z.unknown(),
    axes: z.record(z.string(), z.array(z.unknown()).min(1)),
    replications: z.number().int().min(1),
    seed: num,
  }),
  runs: z.number().int().min(0),
});

const recordSchema = z.looseObject({
  index: z.number().int(),
  config: z.number().int(),
  replication: z.number().int(),
  seed: num,
  params: z.record(z.string(), z.unknown()),
  status: z.enum(['ok', 'failed']),
  error: z.string().optional(),
  result: runResultSchema.optional(),
}).refine((r) => r.status !== 'ok' || r.result !== undefined, { message: 'an ok run needs a result', path: ['result'] });

export type RunResult = z.output<typeof runResultSchema>;
export type Timeline = z.output<typeof timelineSchema>;
export type Manifest = z.output<typeof manifestSchema>;
export type RunRecord = z.output<typeof recordSchema>;

export interface RunInput {
  kind: 'run';
  path: string;
  result: RunResult;
}

export interface SweepInput {
  kind: 'sweep';
  dir: string;
  manifest: Manifest;
  /** One record per run index, sorted by index. */
  records: RunRecord[];
  /** Lines of runs.jsonl that are not JSON: torn appends of an interrupted sweep. */
  tornLines: number;
}

export type ReportInput = RunInput | SweepInput;

/** The first schema problem as "path: message", for a one-line error. */
function firstIssue(e: z.ZodError): string {
  const issue = e.issues[0]!;
  return `${issue.path.join('.') || '(top level)'}: ${issue.message}`;
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${what} is not JSON: ${(e as Error).message.split('\n')[0]}`);
  }
}

/** A run result file, or a sweep directory (manifest.json + runs.jsonl); UsageError otherwise. */
export function loadReportInput(path: string): ReportInput {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch (e) {
    throw new UsageError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return isDir ? loadSweep(path) : loadRun(path);
}

function loadRun(path: string): RunInput {
  const r = runResultSchema.safeParse(parseJson(readText(path), path));
  if (!r.success) throw new UsageError(`${path} is not a postcopy-emu run result (run --json): ${firstIssue(r.error)}`);
  return { kind: 'run', path, result: r.data };
}

function loadSweep(dir: string): SweepInput {
  const manifestPath = join(dir, 'manifest.json');
  const runsPath = join(dir, 'runs.jsonl');
  let hasManifest = false;
  try {
    hasManifest = statSync(manifestPath).isFile();
  } catch {
    // Reported below as "not a sweep directory".
  }
  if (!hasManifest) throw new UsageError(`${dir} is not a sweep directory: it has no manifest.json`);
  const m = manifestSchema.safeParse(parseJson(readText(manifestPath), manifestPath));
  if (!m.success) throw new UsageError(`${manifestPath} is not a postcopy-emu sweep manifest: ${firstIssue(m.error)}`);

  const axes = Object.keys(m.data.sweep.axes);
  const byIndex = new Map<number, RunRecord>();
  let tornLines = 0;
  readText(runsPath).split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let doc: unknown;
    try {
      doc = JSON.parse(line);
    } catch {
      // The sweep appends one line per finished run; a killed sweep can leave a partial one.
      tornLines++;
      return;
    }
    const r = recordSchema.safeParse(doc);
    if (!r.success) throw new UsageError(`${runsPath} line ${i + 1} is not a sweep run record: ${firstIssue(r.error)}`);
    const lacking = axes.find((a) => !Object.hasOwn(r.data.params, a));
    if (lacking !== undefined) throw new UsageError(`${runsPath} line ${i + 1}: params has no value for the axis ${lacking} (a run of another sweep?)`);
    byIndex.set(r.data.index, r.data);
  });
  const records = [...byIndex.values()].sort((a, b) => a.index - b.index);
  if (!records.some((r) => r.status === 'ok')) {
    const failed = records.find((r) => r.status === 'failed');
    throw new UsageError(`${runsPath} has no successful run${failed ? `; run ${failed.index} failed: ${(failed.error ?? 'no error given').split('\n')[0]}` : ''}`);
  }
  return { kind: 'sweep', dir, manifest: m.data, records, tornLines };
}
