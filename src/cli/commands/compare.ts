import { existsSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import type { RunReport } from '../../metrics/report.ts';
import { UsageError } from '../../io/errors.ts';

/** A run result with its time series is megabytes; 256 MiB is far beyond any. */
const MAX_RESULT_BYTES = 2 ** 28;

async function readReport(path: string): Promise<RunReport> {
  const { readBounded } = await import('../../io/read.ts');
  try {
    const r = JSON.parse(readBounded(path, MAX_RESULT_BYTES, 'run result').toString('utf8')) as RunReport;
    if (typeof r.downtime !== 'number' || !r.emulator) throw new Error('not a run result');
    return r;
  } catch (e) {
    throw new UsageError(`${path}: ${(e as Error).message} (expected the JSON of postcopy-emu run --json)`);
  }
}

/**
 * The mean of several reports: numbers averaged leaf by leaf, everything else from the first.
 * A leaf only some reports have (a longer status history) is averaged over those.
 */
export function meanReport(reports: RunReport[]): RunReport {
  const mean = (all: unknown[]): unknown => {
    const xs = all.filter((x) => x !== undefined);
    const x0 = xs[0];
    if (typeof x0 === 'number') return (xs as number[]).reduce((a, b) => a + b, 0) / xs.length;
    if (Array.isArray(x0)) {
      const longest = xs.reduce<unknown[]>((a, x) => ((x as unknown[]).length > a.length ? x as unknown[] : a), x0);
      return longest.map((_, i) => mean(xs.map((x) => (x as unknown[])[i])));
    }
    if (x0 !== null && typeof x0 === 'object') {
      return Object.fromEntries(Object.keys(x0).map((k) => [k, mean(xs.map((x) => (x as Record<string, unknown>)[k]))]));
    }
    return x0;
  };
  return mean(reports) as RunReport;
}

export function registerCompare(cmd: Command, out: (s: string) => void): void {
  cmd.command('compare')
    .description('side-by-side table of run results (ratios against the first), or of a sweep grouped --by an axis')
    .argument('<inputs...>', 'run JSON files, or one sweep directory')
    .option('--by <path>', 'with a sweep directory: the axis whose values become the columns')
    .action(async (inputs: string[], o: { by?: string }) => {
      const [{ readRecords }, { formatTable }] = await Promise.all([import('../../sweep/output.ts'), import('../table.ts')]);
      if (inputs.length === 1 && existsSync(inputs[0]!) && statSync(inputs[0]!).isDirectory()) {
        const read = readRecords(inputs[0]!);
        for (const w of read.skipped) process.stderr.write(`postcopy-emu: warning: ${w}; skipped\n`);
        const records = read.records.filter((r) => r.status === 'ok' && r.result);
        if (records.length === 0) throw new UsageError(`${inputs[0]} has no successful runs in runs.jsonl`);
        const by = o.by ?? Object.keys(records[0]!.params)[0]!;
        if (!(by in records[0]!.params)) throw new UsageError(`--by ${by} is not an axis of this sweep (axes: ${Object.keys(records[0]!.params).join(', ')})`);
        const groups = new Map<string, RunReport[]>();
        for (const r of records) {
          const v = r.params[by];
          const key = typeof v === 'string' ? v : JSON.stringify(v);
          groups.set(key, [...(groups.get(key) ?? []), r.result!]);
        }
        const headers = [...groups.keys()].map((k) => `${by}=${k}`);
        out(`${formatTable([...groups.values()].map(meanReport), headers, true)}\n(mean over ${records.length} runs)\n`);
        return;
      }
      if (o.by) throw new UsageError('--by needs one sweep directory');
      out(`${formatTable(await Promise.all(inputs.map(readReport)), inputs, true)}\n`);
    });
}
