import { join } from 'node:path';
import type { Command } from 'commander';

/** report.html inside a sweep directory; RUN.json → RUN.html beside a run result. */
function defaultOutput(input: string, isDir: boolean): string {
  if (isDir) return join(input, 'report.html');
  return /\.json$/i.test(input) ? input.replace(/\.json$/i, '.html') : `${input}.html`;
}

export function registerReport(cmd: Command, out: (s: string) => void): void {
  cmd.command('report')
    .description('write one self-contained HTML report (plots and tables) of a run JSON or a sweep directory')
    .argument('<input>', 'a run result (run --json FILE) or a sweep output directory')
    .option('-o, --output <file>', 'HTML file to write (default: DIR/report.html, or RUN.html beside RUN.json)')
    .option('--metric <path>', 'sweeps: the number in the run result to plot against an axis (default: downtime)')
    .option('--axis <path>', 'sweeps: the axis on x (default: the first axis); the others become the lines')
    .action(async (input: string, o: { output?: string; metric?: string; axis?: string }) => {
      // Loaded here, not at the top: vega is large and only this command needs it.
      const { loadReportInput } = await import('../../report/input.ts');
      const { writeReport } = await import('../../report/write.ts');
      const { checkOutputFile } = await import('../../io/write.ts');
      const data = loadReportInput(input);
      const path = o.output ?? defaultOutput(input, data.kind === 'sweep');
      checkOutputFile(path);
      // The page, then each plot's Vega-Lite spec beside it (STEM-<plot>.vl.json).
      await writeReport(data, path, o);
      out(`${path}\n`);
    });
}
