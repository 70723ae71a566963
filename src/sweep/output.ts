import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeAtomic } from '../io/write.ts';
import type { RunReport } from '../metrics/report.ts';
import { describeColumn } from './metrics-doc.ts';
import type { SweepRun } from './spec.ts';

/** One line of runs.jsonl. */
export type RunRecord = SweepRun & { status: 'ok' | 'failed'; error?: string; result?: RunReport };

export const RUNS = 'runs.jsonl';

/** Records already in a sweep directory; a torn last line (a killed sweep) is ignored. */
export function readRecords(dir: string): RunRecord[] {
  const path = join(dir, RUNS);
  if (!existsSync(path)) return [];
  const out: RunRecord[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as RunRecord);
    } catch {
      // A partial line from an interrupted append: that run simply runs again.
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
