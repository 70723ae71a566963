import { Option, type Command } from 'commander';
import { UsageError } from '../../io/errors.ts';

interface ImportOptions {
  output: string;
  format: 'csv' | 'lackey';
  pageSize: string;
  ips?: string;
  includeFetches?: boolean;
  maxRecords?: string;
}

function integer(flag: string, s: string, min: number, max: number): number {
  const n = Number(s);
  if (!/^\d+$/.test(s) || n < min || n > max) throw new UsageError(`${flag}: must be an integer in ${min}..${max}, got "${s}"`);
  return n;
}

export function registerTrace(cmd: Command, out: (s: string) => void): void {
  const trace = cmd.command('trace').description('page-access traces for workload.kind trace (docs/traces.md)');
  trace.command('import')
    .description('convert a CSV or valgrind lackey log into a .pctrace file')
    .argument('<input>', 'CSV time_ns,gfn,op, or the output of valgrind --tool=lackey --trace-mem=yes')
    .requiredOption('-o, --output <file>', 'the .pctrace file to write')
    .addOption(new Option('-f, --format <format>', 'input format').choices(['csv', 'lackey']).makeOptionMandatory())
    .option('--page-size <bytes>', 'guest page size', '4096')
    .option('--ips <n>', 'lackey: instructions per second, for timing (default 1e9)')
    .option('--include-fetches', 'lackey: record instruction fetches as reads')
    .option('--max-records <n>', 'stop after N records')
    .action(async (input: string, o: ImportOptions) => {
      const [{ encodeTrace, traceStats }, { TraceImportError, importCsv, importLackey, readLines }, { checkOutputFile, writeAtomic }] = await Promise.all([
        import('../../trace/format.ts'), import('../../trace/import.ts'), import('../../io/write.ts'),
      ]);
      checkOutputFile(o.output);
      const pageSize = integer('--page-size', o.pageSize, 512, 2 ** 30);
      const maxRecords = o.maxRecords === undefined ? undefined : integer('--max-records', o.maxRecords, 1, 2 ** 32 - 1);
      if (o.format === 'csv' && (o.ips !== undefined || o.includeFetches)) throw new UsageError('--ips and --include-fetches apply to --format lackey only');
      const ips = Number(o.ips ?? 1e9);
      if (!(Number.isFinite(ips) && ips > 0)) throw new UsageError(`--ips: must be a positive number, got "${o.ips}"`);
      let t;
      try {
        const lines = readLines(input);
        t = o.format === 'csv'
          ? importCsv(lines, { pageSize, maxRecords })
          : importLackey(lines, { pageSize, maxRecords, ips, includeFetches: o.includeFetches });
      } catch (e) {
        if (e instanceof TraceImportError) throw new UsageError(`${input}: ${e.message}`);
        if ((e as NodeJS.ErrnoException).code) throw new UsageError(`cannot read ${input}: ${(e as Error).message}`);
        throw e;
      }
      const bytes = encodeTrace(t);
      writeAtomic(o.output, bytes);
      const s = traceStats(t);
      out(`${o.output}: ${s.records} records, ${s.pages} distinct pages (gfns 0..${s.span - 1}), `
        + `${s.durationNs / 1e6} ms, ${bytes.length} bytes (${(bytes.length / s.records).toFixed(2)} B/record)\n`);
    });
}
