import { ms, toKbytes } from '../metrics/units.ts';
import { runScenario } from '../run.ts';
import type { RunReport } from '../metrics/report.ts';
import { REPRODUCTIONS, type ReproductionName } from '../scenario/lifecycle-presets.ts';
import { presetInput } from '../scenario/load.ts';
import type { ScenarioInput } from '../scenario/schema.ts';
import { VFIO_000, formatVfio, vfioMeasured } from './vfio.ts';
import { QEMU_2022, QEMU_2022_TITLE, XEN_2017, XEN_2017_TITLE, type InfoMigrate, type XenDurations } from './seeds.ts';


/** The parts of a run report the tables read: a RunReport fits, and so does a hand-made one in a test. */
export interface ReproReport {
  status: string;
  'total-time': number;
  downtime: number;
  'expected-downtime': number;
  'setup-time': number;
  ram: Pick<RunReport['ram'], 'transferred' | 'mbps' | 'remaining' | 'duplicate' | 'normal' | 'dirty-sync-count' | 'multifd-bytes'
    | 'pages-per-second' | 'dirty-pages-rate' | 'precopy-bytes' | 'downtime-bytes'>;
  emulator: {
    scenario: string;
    'postcopy-duration': number | null;
    precopy?: { 'paused-at-ms': number | null; 'switched-to-postcopy': boolean };
  };
}

/** Runs a reproduction's presets in REPRODUCTIONS order; `input` lets the CLI apply --seed. */
export function runReproduction(
  name: ReproductionName,
  input: (preset: string) => ScenarioInput = presetInput,
  onRun?: (index: number, total: number, preset: string) => void,
): RunReport[] {
  const presets: readonly string[] = REPRODUCTIONS[name];
  return presets.map((p, i) => {
    onRun?.(i, presets.length, p);
    return runScenario(input(p)).report;
  });
}

/** Seconds from the report's ms, which have µs resolution: no binary-fraction noise in the JSON. */
const toSeconds = (ms: number) => Math.round(ms * 1000) / 1e6;

/** The RFC's three durations of a run, in seconds. */
export function xenMeasured(r: ReproReport): XenDurations {
  const p = r.emulator.precopy;
  const postcopy = r.emulator['postcopy-duration'];
  return {
    // A precopy that never paused ran until the end.
    precopy: p ? toSeconds(p['paused-at-ms'] ?? r['total-time']) : 0,
    suspend: toSeconds(r.downtime),
    // Precopy mode: the guest resumed with every page, there was no postcopy.
    postcopy: (p && !p['switched-to-postcopy']) || postcopy === null ? null : toSeconds(postcopy),
  };
}

/** A run's figures in `info migrate`'s units. */
export function qemuMeasured(r: ReproReport): InfoMigrate {
  const ram = r.ram;
  return {
    status: r.status,
    totalTimeMs: r['total-time'],
    downtimeMs: r.downtime,
    expectedDowntimeMs: r['expected-downtime'],
    setupMs: r['setup-time'],
    transferredKbytes: toKbytes(ram.transferred),
    throughputMbps: ram.mbps,
    remainingKbytes: toKbytes(ram.remaining),
    duplicatePages: ram.duplicate,
    normalPages: ram.normal,
    dirtySyncCount: ram['dirty-sync-count'],
    multifdKbytes: toKbytes(ram['multifd-bytes']),
    pagesPerSecond: ram['pages-per-second'],
    dirtyPagesRate: ram['dirty-pages-rate'],
    precopyKbytes: toKbytes(ram['precopy-bytes']),
    downtimeKbytes: toKbytes(ram['downtime-bytes']),
  };
}

function seedOf<T>(table: Record<string, T>, r: ReproReport): T {
  const s = table[r.emulator.scenario];
  if (s === undefined) throw new Error(`no published figures for preset "${r.emulator.scenario}"`);
  return s;
}

/** Rows of cells, aligned: the first `left` columns padded right, the others left; null is a blank line. */
function align(rows: readonly (readonly string[] | null)[], left: number): string[] {
  const widths: number[] = [];
  for (const row of rows) row?.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((row) => (row ?? []).map((c, i) => (i < left ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd());
}

const seconds = (v: number | null) => (v === null ? 'N/A' : v.toFixed(2));
/** Published figures keep the precision they were printed with (6.807), but at least 2 decimals. */
const published = (v: number | null) => (v === null ? 'N/A' : v.toFixed(Math.max(2, (String(v).split('.')[1] ?? '').length)));

/** Seed 004's table: one row per migration scheme, each cell `measured (published)` in seconds. */
export function formatXen(reports: readonly ReproReport[]): string {
  const keys = ['precopy', 'suspend', 'postcopy'] as const;
  const rows = reports.map((r) => {
    const seed = seedOf(XEN_2017, r), m = xenMeasured(r);
    return [seed.label, r.emulator.scenario, ...keys.map((k) => `${seconds(m[k])} (${published(seed.published[k])})`)];
  });
  const head = ['', 'preset', 'precopy duration', 'suspend duration', 'postcopy duration'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const lines = align([head, widths.map((w) => '-'.repeat(w)), ...rows], 2);
  return [`${XEN_2017_TITLE}; seconds, measured (published)`, '', ...lines].join('\n') + '\n';
}

const maybe = (f: (v: number) => string) => (v: number | undefined) => (v === undefined ? undefined : f(v));
const unit = (u: string) => maybe((v) => `${v} ${u}`);
const [kbytes, pages, plain] = [unit('kbytes'), unit('pages'), maybe(String)];

/** The `info migrate` lines compared, in QEMU's order and with its labels and units. */
const INFO_ROWS: [string, (i: InfoMigrate) => string | undefined][] = [
  ['Migration status', (i) => i.status],
  ['total time', (i) => ms(i.totalTimeMs)],
  ['downtime', (i) => maybe(ms)(i.downtimeMs)],
  ['expected downtime', (i) => maybe(ms)(i.expectedDowntimeMs)],
  ['setup', (i) => ms(i.setupMs)],
  ['transferred ram', (i) => kbytes(i.transferredKbytes)],
  ['throughput', (i) => `${i.throughputMbps.toFixed(2)} mbps`],
  ['remaining ram', (i) => kbytes(i.remainingKbytes)],
  ['duplicate', (i) => pages(i.duplicatePages)],
  ['normal', (i) => pages(i.normalPages)],
  ['dirty sync count', (i) => plain(i.dirtySyncCount)],
  ['multifd bytes', (i) => kbytes(i.multifdKbytes)],
  ['pages-per-second', (i) => plain(i.pagesPerSecond)],
  ['dirty pages rate', (i) => pages(i.dirtyPagesRate)],
  ['precopy ram', (i) => kbytes(i.precopyKbytes)],
  ['downtime ram', (i) => kbytes(i.downtimeKbytes)],
];

/** Seed 001's printouts: one block per preset, measured beside the seed's first run ('—': not shown there). */
export function formatQemu(reports: readonly ReproReport[]): string {
  const rows = reports.flatMap((r, n) => {
    const seed = seedOf(QEMU_2022, r), m = qemuMeasured(r);
    return [
      ...(n > 0 ? [null] : []),
      [r.emulator.scenario, 'measured', 'seed 001'],
      ...INFO_ROWS.map(([label, f]) => [`  ${label}:`, f(m) ?? '—', f(seed) ?? '—']),
    ];
  });
  return [QEMU_2022_TITLE, '', ...align(rows, 1)].join('\n') + '\n';
}

/** The table a reproduction prints. */
/** The table for `name`; `overrides` (the --set arguments) are named under it: a what-if, not the seed's setting. */
export function formatReproduction(name: ReproductionName, reports: readonly ReproReport[], overrides: readonly string[] = []): string {
  const table = name === 'xen-2017' ? formatXen(reports) : name === 'vfio' ? formatVfio(reports as RunReport[]) : formatQemu(reports);
  return overrides.length === 0 ? table : `${table}\nwhat-if: every preset run with ${overrides.map((o) => `--set ${o}`).join(' ')}\n`;
}

/** `--json`: the measured figures and the published ones, keyed by preset, in the same shape. */
export function reproductionJson(name: ReproductionName, reports: readonly ReproReport[]) {
  const xen = name === 'xen-2017';
  if (name === 'vfio') {
    const published: Record<string, object> = { 'vfio-000-2vf-cold': { downtimeMs: VFIO_000.twoVfCold }, 'vfio-000-2vf-warm': { downtimeMs: VFIO_000.twoVfWarm } };
    return { measured: Object.fromEntries(reports.map((r) => [r.emulator.scenario, vfioMeasured(r as RunReport)])), published };
  }
  return {
    measured: Object.fromEntries(reports.map((r) => [r.emulator.scenario, xen ? xenMeasured(r) : qemuMeasured(r)])),
    published: Object.fromEntries(reports.map((r) => [r.emulator.scenario, xen ? seedOf(XEN_2017, r).published : seedOf(QEMU_2022, r)])),
  };
}
