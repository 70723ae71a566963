import { appendFileSync, existsSync } from 'node:fs';
import { readLines } from '../io/read.ts';
import { join } from 'node:path';
import { z } from 'zod';
import { writeAtomic } from '../io/write.ts';
import type { RunReport } from '../metrics/report.ts';
import { describeColumn } from './metrics-doc.ts';
import type { SweepRun } from './spec.ts';

/** One line of runs.jsonl. */
export type RunRecord = SweepRun & { status: 'ok' | 'failed'; error?: string; result?: RunReport };

export const RUNS = 'runs.jsonl';
/** One record with its time series can reach megabytes; 64 M characters is far beyond any. */
const MAX_RECORD_CHARS = 2 ** 26;

/** A line of runs.jsonl as read back: the fields every reader relies on, checked. */
const recordSchema = z.object({
  index: z.number().int().min(0),
  config: z.number().int().min(0),
  replication: z.number().int().min(0),
  seed: z.number().int().min(0),
  params: z.record(z.string(), z.unknown()),
  status: z.enum(['ok', 'failed']),
  error: z.string().optional(),
  result: z.object({
    status: z.string(),
    downtime: z.number(),
    'total-time': z.number(),
    ram: z.record(z.string(), z.unknown()),
    emulator: z.object({ events: z.number() }).loose(),
  }).loose().optional(),
}).refine((r) => (r.status === 'ok') === (r.result !== undefined), 'an ok run has a result, a failed one none');

/** Records read back, and the lines that were not records (each named by its line number). */
export interface ReadRecords {
  records: RunRecord[];
  skipped: string[];
}

/**
 * Records already in a sweep directory. A line that is not a run record (a torn last line from a
 * killed sweep, or anything else) is skipped and named in `skipped`: its run simply runs again.
 */
export function readRecords(dir: string): ReadRecords {
  const path = join(dir, RUNS);
  const out: ReadRecords = { records: [], skipped: [] };
  if (!existsSync(path)) return out;
  // Streamed: a sweep's runs.jsonl may pass the 512 MiB a JavaScript string can hold.
  let i = -1;
  for (const line of readLines(path, MAX_RECORD_CHARS)) {
    i++;
    if (!line.trim()) continue;
    let doc: unknown;
    try {
      doc = JSON.parse(line);
    } catch {
      out.skipped.push(`${path} line ${i + 1}: not JSON`);
      continue;
    }
    const r = recordSchema.safeParse(doc);
    // The record as written, not zod's copy: key order stays, so a rewrite is byte-identical.
    if (r.success) out.records.push(doc as RunRecord);
    else {
      const issue = r.error.issues[0]!;
      out.skipped.push(`${path} line ${i + 1}: not a run record (${issue.path.join('.') || 'record'}: ${issue.message})`);
    }
  }
  return out;
}

/** Appends one finished run, so an interrupted sweep can resume from here. */
export function appendRecord(dir: string, rec: RunRecord): void {
  appendFileSync(join(dir, RUNS), `${JSON.stringify(rec)}\n`);
}

/** Writes runs.jsonl (sorted by index, one record per run), runs.csv and metrics.md. */
export function writeResults(dir: string, records: RunRecord[]): void {
  const byIndex = new Map<number, RunRecord>();
  for (const r of records) byIndex.set(r.index, r);
  const sorted = [...byIndex.values()].sort((a, b) => a.index - b.index);
  writeAtomic(join(dir, RUNS), sorted.map((r) => JSON.stringify(r)).join('\n') + (sorted.length ? '\n' : ''));
  const rows = sorted.map(flattenRecord);
  const columns: string[] = [];
  const seen = new Set<string>();
  for (const row of rows) for (const k of Object.keys(row)) if (!seen.has(k)) { seen.add(k); columns.push(k); }
  const csv = [columns.map(csvCell).join(','), ...rows.map((row) => columns.map((c) => csvCell(row[c])).join(','))];
  writeAtomic(join(dir, 'runs.csv'), csv.join('\n') + '\n');
  const md = ['# Metrics in runs.csv', '', '| column | unit | definition |', '|---|---|---|',
    ...columns.map((c) => { const [unit, def] = describeColumn(c); return `| \`${c}\` | ${unit} | ${def} |`; })];
  writeAtomic(join(dir, 'metrics.md'), md.join('\n') + '\n');
}

/** A record as one CSV row: scalars by dotted path, arrays by index; time series are left out. */
function flattenRecord(rec: RunRecord): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  const { params, result, ...head } = rec;
  Object.assign(row, head);
  for (const [k, v] of Object.entries(params)) row[`params.${k}`] = typeof v === 'object' ? JSON.stringify(v) : v;
  if (result) flatten(result, 'result', row);
  return row;
}

function flatten(v: unknown, path: string, out: Record<string, unknown>): void {
  // Time series stay in runs.jsonl: one column per sample would bury the figures.
  if (path.endsWith('.timeline') || path === 'result.emulator.samples') return;
  if (Array.isArray(v)) v.forEach((x, i) => flatten(x, `${path}.${i}`, out));
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) flatten(x, `${path}.${k}`, out);
  else out[path] = v;
}

function csvCell(v: unknown): string {
  if (v === undefined || v === null) return '';
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
