/** Writes a report: the HTML page and, beside it, each plot's Vega-Lite spec with its data. */
import { basename, dirname, join } from 'node:path';
import { writeAtomic } from '../io/write.ts';
import { buildReport, type ReportOptions } from './build.ts';
import type { ReportInput } from './input.ts';

/** The spec files' prefix: report.html → report (report-latency-cdf.vl.json), RUN.html → RUN. */
export const specStem = (htmlPath: string): string => basename(htmlPath).replace(/\.html?$/i, '');

/**
 * Writes the page to `htmlPath` and the specs beside it; returns every path written, the page
 * first. The page goes first so an unwritable output fails before anything else is written.
 */
export async function writeReport(input: ReportInput, htmlPath: string, o: ReportOptions = {}): Promise<string[]> {
  const { html, specs } = await buildReport(input, { ...o, specStem: specStem(htmlPath) });
  const write = (path: string, text: string) => {
    writeAtomic(path, text);
    return path;
  };
  return [
    write(htmlPath, html),
    ...specs.map((s) => write(join(dirname(htmlPath), s.file), `${JSON.stringify(s.spec, null, 2)}\n`)),
  ];
}
