import type { RunReport } from '../metrics/report.ts';

/** The rows a person reads first, as (label, unit, value of a report). */
const ROWS: Array<[string, string, (r: RunReport) => number | string | null]> = [
  ['status', '', (r) => (cutByHorizon(r) ? `${r.status} (horizon)` : r.status)],
  ['downtime', 'ms', (r) => lowerBound(r, r.downtime)],
  ['total-time', 'ms', (r) => lowerBound(r, r['total-time'])],
  ['postcopy-duration', 'ms', (r) => r.emulator['postcopy-duration']],
  ['eviction-time', 'ms', (r) => r.emulator['eviction-time']],
  ['outstanding pages', '', (r) => r.emulator['outstanding-at-start']],
  ['pages pushed', '', (r) => r.emulator['pages-pushed']],
  ['pages demand-fetched', '', (r) => r.emulator['pages-demand-fetched']],
  ['faults vCPU / foreign', '', (r) => `${num(r.emulator.faults.vcpu)} / ${num(r.emulator.faults.foreign)}`],
  ['touched pages network / minor', '', (r) => `${num(r.emulator.faults.network)} / ${num(r.emulator.faults.minor)}`],
  ['ring max occupancy', '', (r) => `${num(r.emulator.ring['max-occupancy'])} / ${num(r.emulator.ring.capacity)}`],
  ['ring time full', 'ms', (r) => r.emulator.ring['time-full']],
  ['ring EBUSY', '', (r) => r.emulator.ring.ebusy],
  ['mapper retries', '', (r) => r.emulator.mapper.retries],
  ['fault latency p50', 'µs', (r) => us(r.emulator['fault-latency'].p50)],
  ['fault latency p99', 'µs', (r) => us(r.emulator['fault-latency'].p99)],
  ['fault latency max', 'µs', (r) => us(r.emulator['fault-latency'].max)],
  // '-' without pages asked for singly (range requests only), or in a result from before the field.
  ['request latency p50', 'µs', (r) => ((r.emulator['request-latency']?.count ?? 0) > 0 ? us(r.emulator['request-latency'].p50) : '-')],
  ['postcopy-blocktime', 'ms', (r) => r['postcopy-blocktime']],
  ['ram transferred', 'MiB', (r) => r.ram.transferred / 2 ** 20],
  ['events', '', (r) => r.emulator.events],
];

/** Shown when a run had a precopy phase (migration.mode precopy or hybrid), after total-time. */
const PRECOPY_ROWS: typeof ROWS = [
  ['precopy duration', 'ms', (r) => r.emulator.precopy?.['paused-at-ms'] ?? 0],
  ['precopy end', '', (r) => r.emulator.precopy?.end ?? '-'],
  ['dirty-sync-count', '', (r) => r.ram['dirty-sync-count']],
  ['expected-downtime', 'ms', (r) => r['expected-downtime']],
  ['cpu-throttle-percentage', '', (r) => r['cpu-throttle-percentage']],
  ['discarded pages', '', (r) => r.emulator.precopy?.['discarded-pages'] ?? 0],
  ['duplicate / normal pages', '', (r) => `${num(r.ram.duplicate)} / ${num(r.ram.normal)}`],
];

/** Shown when a run had passthrough devices (docs/devices.md), after the precopy rows. */
const DEVICE_ROWS: typeof ROWS = [
  ['devices', '', (r) => r.emulator.devices?.length ?? 0],
  ['vfio transferred', 'MiB', (r) => (r.vfio?.transferred ?? 0) / 2 ** 20],
  ['downtime: RAM', 'ms', (r) => r.emulator['downtime-breakdown']?.['ram-ms'] ?? null],
  ['downtime: device stop', 'ms', (r) => r.emulator['downtime-breakdown']?.['device-stop-ms'] ?? null],
  ['downtime: device data', 'ms', (r) => r.emulator['downtime-breakdown']?.['device-transfer-ms'] ?? null],
  ['downtime: device load', 'ms', (r) => r.emulator['downtime-breakdown']?.['device-load-ms'] ?? null],
  ['stale pages (untracked DMA)', '', (r) => r.emulator['stale-pages'] ?? 0],
];

const us = (ns: number) => ns / 1000;
/** A run the horizon cut short: its downtime and total time are only lower bounds. */
const cutByHorizon = (r: RunReport) => r.emulator.truncated?.by === 'horizon';
const lowerBound = (r: RunReport, ms: number): number | string => (cutByHorizon(r) ? `≥ ${ms.toFixed(3)}` : ms);
/** A count inside a text cell; a mean over runs may be fractional. */
const num = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(1));

/** Decimals by unit, the same in every row of that unit: ms to the µs, µs to 0.1, MiB to 0.1. */
const DECIMALS: Record<string, number> = { ms: 3, 'µs': 1, MiB: 1 };

/** A value as its row's unit shows it; counts are whole (a mean over runs gets one decimal). */
function cell(v: number | string | null, unit: string): string {
  if (v === null) return '-';
  if (typeof v === 'string') return v;
  const d = DECIMALS[unit];
  return d !== undefined ? v.toFixed(d) : num(v);
}

/** `value (×ratio)` against the first column, for numbers both sides have. */
function withRatio(v: number | string | null, first: number | string | null, unit: string): string {
  if (typeof v !== 'number' || typeof first !== 'number' || first === 0) return cell(v, unit);
  return `${cell(v, unit)} (×${(v / first).toFixed(2)})`;
}

/**
 * One column per report, one row per metric, aligned for a terminal; with `ratios`, every
 * column after the first also shows its ratio to the first.
 */
export function formatTable(reports: readonly RunReport[], headers: readonly string[], ratios = false): string {
  const devices = reports.some((r) => r.emulator.devices) ? DEVICE_ROWS : [];
  const rows = reports.some((r) => r.emulator.precopy) ? [...ROWS.slice(0, 3), ...PRECOPY_ROWS, ...devices, ...ROWS.slice(3)] : [...ROWS.slice(0, 3), ...devices, ...ROWS.slice(3)];
  const labels = rows.map(([l, u]) => (u ? `${l} (${u})` : l));
  const values = reports.map((r) => rows.map(([, , f]) => f(r)));
  const cols = values.map((col, i) => col.map((v, j) => {
    const unit = rows[j]![1];
    return ratios && i > 0 ? withRatio(v, values[0]![j]!, unit) : cell(v, unit);
  }));
  const lw = Math.max(6, ...labels.map((l) => l.length));
  const widths = cols.map((c, i) => Math.max(headers[i]!.length, ...c.map((x) => x.length)));
  const line = (label: string, cells: string[]) =>
    [label.padEnd(lw), ...cells.map((c, i) => c.padStart(widths[i]!))].join('  ').trimEnd();
  const out = [line('', [...headers]), line('-'.repeat(lw), widths.map((w) => '-'.repeat(w)))];
  labels.forEach((l, j) => out.push(line(l, cols.map((c) => c[j]!))));
  return out.join('\n');
}
