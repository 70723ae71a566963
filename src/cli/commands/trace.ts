import { Option, type Command } from 'commander';
import { UsageError } from '../../io/errors.ts';
import { MAX_TRACE_RECORDS } from '../../trace/format.ts';

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
      const [{ encodeTrace, traceStats }, { TraceImportError, importCsv, importLackey }, { checkOutputFile, writeAtomic }, { readLines }] = await Promise.all([
        import('../../trace/format.ts'), import('../../trace/import.ts'), import('../../io/write.ts'), import('../../io/read.ts'),
      ]);
      checkOutputFile(o.output);
      const pageSize = integer('--page-size', o.pageSize, 512, 2 ** 30);
      if ((pageSize & (pageSize - 1)) !== 0) throw new UsageError(`--page-size: must be a power of two (a page is 2^k bytes), got ${pageSize}`);
      const maxRecords = o.maxRecords === undefined ? undefined : integer('--max-records', o.maxRecords, 1, MAX_TRACE_RECORDS);
      if (o.format === 'csv' && (o.ips !== undefined || o.includeFetches)) throw new UsageError('--ips and --include-fetches apply to --format lackey only');
      const ips = Number(o.ips ?? 1e9);
      // 1 kHz … 1 THz: an instruction at most 1 ms, so 2^26 records stay within the 2^53 ns clock.
      if (!(ips >= 1e3 && ips <= 1e12)) throw new UsageError(`--ips: must be a number of instructions per second in 1e3..1e12, got "${o.ips}"`);
      let t;
      try {
        // Lines are streamed; a line of over 64 KiB is no trace line (a binary file, a device).
        const lines = readLines(input, 65_536);
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
