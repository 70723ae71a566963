import { formatValue, mean, type Config } from './configs.ts';
import type { RunResult } from './input.ts';
import { table } from './html.ts';

const NUMBER = new Intl.NumberFormat('en-US', { maximumFractionDigits: 3 });
const ns2us = (ns: number) => ns / 1000;

/** The main metrics, as (column heading, value of one result); numbers are averaged over replications. */
const METRICS: Array<[string, (r: RunResult) => number]> = [
  ['downtime (ms)', (r) => r.downtime],
  ['total-time (ms)', (r) => r['total-time']],
  ['faults', (r) => r.emulator['fault-latency'].count],
  ['latency p50 (µs)', (r) => ns2us(r.emulator['fault-latency'].p50)],
  ['latency p99 (µs)', (r) => ns2us(r.emulator['fault-latency'].p99)],
  ['latency max (µs)', (r) => ns2us(r.emulator['fault-latency'].max)],
  ['ring max occupancy', (r) => r.emulator.ring['max-occupancy']],
  ['ring slots', (r) => r.emulator.ring.capacity],
  ['ring time full (ms)', (r) => r.emulator.ring['time-full']],
  ['ring EBUSY', (r) => r.emulator.ring.ebusy],
  ['RAM transferred (MiB)', (r) => r.ram.transferred / 2 ** 20],
];

/** "completed", or for replications "completed ×2, postcopy-active ×1". */
function statusOf(results: readonly RunResult[]): string {
  const counts = new Map<string, number>();
  for (const r of results) counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
  if (results.length === 1) return results[0]!.status;
  return [...counts].map(([s, n]) => `${s} ×${n}`).join(', ');
}

function values(c: Config): string[] {
  return METRICS.map(([, f]) => (c.results.length === 0 ? '-' : NUMBER.format(mean(c.results.map(f)))));
}

/** One run: a metric per row. */
export function runSummary(c: Config): string {
  const v = values(c);
  const rows = [['status', statusOf(c.results)], ...METRICS.map(([h], i) => [h, v[i]!])];
  return table('summary', 'Summary', 'The run\'s main figures, in the units of the run JSON (QEMU query-migrate names where QEMU has one).', ['metric', c.label], rows);
}

/** A sweep: a configuration per row (a column per axis), each number the mean over its successful replications. */
export function sweepSummary(configs: readonly Config[], axes: readonly string[]): string {
  const headers = [...axes, 'runs ok', 'status', ...METRICS.map(([h]) => h)];
  const rows = configs.map((c) => [
    ...axes.map((a) => formatValue(c.params[a])),
    `${c.results.length}/${c.results.length + c.failed.length}`,
    c.results.length === 0 ? 'failed' : statusOf(c.results),
    ...values(c),
  ]);
  return table('summary', 'Summary', 'One row per configuration; every number is the mean over the configuration\'s successful replications ("runs ok"). Failed runs are listed at the end of the report.', headers, rows, axes.length);
}

/** The failed runs of a sweep with their errors, so a hole in a plot has its reason next to it. */
export function failedRuns(configs: readonly Config[]): string | null {
  const failed = configs.flatMap((c) => c.failed.map((r) => [String(r.index), c.label, String(r.replication), (r.error ?? '').split('\n')[0]!]));
  if (failed.length === 0) return null;
  return table('failed', 'Failed runs', `${failed.length} run(s) failed and are left out of every plot and mean above.`, ['run', 'configuration', 'replication', 'error'], failed, 2);
}
