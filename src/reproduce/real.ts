import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../io/errors.ts';
import type { RunReport } from '../metrics/report.ts';
import { runScenario } from '../run.ts';
import { GUEST_PAGE, REGION_BASE } from '../live/qemu/firmware.ts';
import { lowRamTop } from '../live/qemu/plan.ts';
import type { Scenario, ScenarioInput } from '../scenario/schema.ts';
import { ScenarioError } from '../scenario/error.ts';
import { readScenarioFile } from '../scenario/load.ts';
import { parseScenario } from '../scenario/validate.ts';
import { readRecords, type RunRecord } from '../sweep/output.ts';
import { scenarioOf } from '../sweep/spec.ts';

/**
 * The wire a real run had: loopback TCP between two QEMU processes on this host's two cores.
 * Its rate is what QEMU moved uncapped: 377.6 MiB of ram1g-seq256-precopy-unl in 407 ms (median
 * of 3 under KVM, 2026-11-27), 7.78 Gbit/s; its uncapped runs are CPU-bound on the two cores
 * (QEMU's own `mbps` 5–11.6 Gbit/s), a single loopback TCP stream moves 23–36 Gbit/s. Its
 * latency is half a loopback TCP ping-pong, 4,473 ns (`live --calibrate` on that host; a later
 * calibration, examples/host-2026-11-27.yaml, has 4,409).
 */
export const LOOPBACK = { rateMbps: 7_780, latencyNs: 4_473 };

/**
 * The host the real runs ran on: the wire (Mbit/s, default LOOPBACK's) and, from `live
 * --calibrate --output FILE` on that host (plus the medians of its runs' `real.switchover`, as in
 * examples/host-2026-11-27.yaml), its measured costs. Of those the model takes what QEMU and the
 * kernel do there too: the pager's syscall, copy and switchover costs, the source's zero-page
 * check and device-state save, loopback's one-way latency and socket buffers, the timer slack
 * and the multifd hand-off. The file's link rate and back-channel latency under load are live
 * mode's own stream, not QEMU's, and stay out.
 */
export interface RealHost {
  wireMbps?: number;
  costs?: Pick<ScenarioInput, 'pager' | 'link' | 'mapper' | 'multifd' | 'source' | 'precopy'>;
}

/**
 * A host file (`live --calibrate --output FILE`): a scenario fragment, checked as a scenario so a
 * bad field is named (exit 2); its costs as RealHost takes them.
 */
export function readRealHost(path: string): NonNullable<RealHost['costs']> {
  const doc = readScenarioFile(path);
  try {
    parseScenario(doc);
  } catch (e) {
    if (e instanceof ScenarioError) throw new ScenarioError(`--host ${path}: ${e.path}`, e.detail);
    throw e;
  }
  return { pager: doc.pager, link: doc.link, mapper: doc.mapper, multifd: doc.multifd, source: doc.source, precopy: doc.precopy };
}

/** What the model of one real run takes from that run's result. */
export interface RealRunFacts {
  /** `--uncapped`: no rate limit, the wire alone. */
  uncapped: boolean;
  /** The guest's own time per page at the destination after the migration (`real.guest.page-ns`), when measured. */
  pageNs?: number | null;
  /** The QEMU that ran it (`real.qemu-version`), e.g. "7.2.22". */
  qemuVersion?: string;
}

/** QEMU before 8.1 sends requested pages from the migration thread, preempt or not (preempt.sender). */
function urgentSender(version: string | undefined): 'return-path' | 'migration-thread' {
  const m = /^(\d+)\.(\d+)/.exec(version ?? '');
  return m !== null && Number(m[1]) * 100 + Number(m[2]) < 801 ? 'migration-thread' : 'return-path';
}

/**
 * The model of a real run: the real harness turned `link.rateMbps` into QEMU's rate limits
 * (`max-bandwidth`, `max-postcopy-bandwidth`: a budget per 100 ms window, then a sleep) on a
 * loopback wire, not into a wire of that rate; an uncapped run had the wire alone. Its guest is
 * the harness's firmware guest (src/live/qemu/firmware.ts): the working set lies 1 MiB up
 * (workload.region counts from there), every other page is zero, and a writer rewrites one page
 * after another at the pace the run measured, no faster and no slower (a loop, not a random
 * think time).
 */
export function modelOfReal(input: ScenarioInput, facts: RealRunFacts, host: RealHost = {}): ScenarioInput {
  const s = parseScenario(input);
  const c = host.costs ?? {};
  const wireMbps = host.wireMbps ?? LOOPBACK.rateMbps;
  const latencyNs = c.link?.latencyNs ?? LOOPBACK.latencyNs;
  const limit = facts.uncapped ? 0 : Math.round((s.link.rateMbps * 1e6) / 8);
  return {
    ...input,
    memory: { ...input.memory, ...firmwareMemory(s) },
    // "Postcopy from the start" is `migrate`, then `migrate-start-postcopy` at once: QEMU sets up
    // (bitmaps, dirty logging, the first sync) and switches as its migration thread begins.
    ...(s.migration.mode === 'postcopy' ? { migration: { ...input.migration, mode: 'hybrid', switchAtNs: 0 } } : {}),
    link: { ...s.link, ...setFields(c.link, ['sendBufferBytes', 'receiveBufferBytes']), rateMbps: wireMbps, latencyNs },
    backChannel: { ...s.backChannel, rateMbps: wireMbps, latencyNs },
    pager: { ...input.pager, ...c.pager },
    source: { ...input.source, maxPostcopyBandwidth: limit, ...setFields(c.source, ['deviceSaveNs', 'zeroCheckNs', 'transitionBytes']) },
    ...(s.preempt.enabled ? { preempt: { ...input.preempt, sender: urgentSender(facts.qemuVersion) } } : {}),
    mapper: { ...input.mapper, ...setFields(c.mapper, ['timerSlackNs']) },
    multifd: { ...input.multifd, ...setFields(c.multifd, ['handoffNs']) },
    precopy: { ...input.precopy, maxBandwidth: limit, ...setFields(c.precopy, ['clearPerPageNs', 'syncPerPageNs']) },
    workload: {
      ...input.workload,
      // The firmware's random order visits every page once per pass.
      kind: s.workload.kind === 'random' ? 'shuffled' : s.workload.kind,
      region: firmwareRegion(s),
      think: 'constant',
      ...(facts.pageNs ? { thinkNs: Math.round(facts.pageNs) } : {}),
    },
  };
}

/** The fields of `from` named in `keys` that it sets (a host file names only what it measured). */
function setFields<T extends object, K extends keyof T>(from: T | undefined, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (from?.[k] !== undefined) out[k] = from[k];
  return out;
}

const FIRST_PAGE = REGION_BASE / GUEST_PAGE;

/** The firmware's working set in the model's page numbers: workload.region moved up 1 MiB, or all low RAM above it. */
function firmwareRegion(s: Scenario): { start: number; count: number } {
  const r = s.workload.region ?? { start: 0, count: lowRamTop(s.memory.pages * GUEST_PAGE) / GUEST_PAGE - FIRST_PAGE };
  return { start: FIRST_PAGE + r.start, count: r.count };
}

/** The firmware guest's memory: zero but for the working set its writer has rewritten (an idle guest writes nothing). */
function firmwareMemory(s: Scenario): { zeroRanges: { start: number; count: number }[]; zeroFraction: 0 } {
  const all = s.memory.pages;
  if (s.workload.kind === 'idle') return { zeroRanges: [{ start: 0, count: all }], zeroFraction: 0 };
  const r = firmwareRegion(s);
  const end = r.start + r.count;
  return { zeroRanges: [{ start: 0, count: r.start }, ...(end < all ? [{ start: end, count: all - end }] : [])], zeroFraction: 0 };
}

/** The figures held against the real runs, each read from a run report (ms, bytes, counts). */
export const REAL_METRICS: ReadonlyArray<[name: string, unit: string, of: (r: RunReport) => number]> = [
  ['total-time', 'ms', (r) => r['total-time']],
  // The guest's downtime, source STOP to destination RESUME (QEMU's event timestamps, µs), as the
  // model's: QEMU's own `downtime` is the source's stop to its package sent, in whole ms.
  ['downtime', 'ms', (r) => (r as { real?: { 'stop-to-resume-ms'?: number | null } }).real?.['stop-to-resume-ms'] ?? r.downtime],
  ['transferred', 'MiB', (r) => r.ram.transferred / 2 ** 20],
  ['postcopy requests', '', (r) => r.ram['postcopy-requests']],
  ['blocktime', 'ms', (r) => r['postcopy-blocktime']],
  // QEMU's trace measures a page's first request to its placement: the model's request latency
  // (a real result written before 2026-11-27 has it as its fault latency only).
  ['request p50', 'ms', (r) => (r.emulator['request-latency'] ?? r.emulator['fault-latency']).p50 / 1e6],
  ['request p99', 'ms', (r) => (r.emulator['request-latency'] ?? r.emulator['fault-latency']).p99 / 1e6],
];

/** One metric of one configuration: the real runs' median and range, the model's median. */
export interface RealComparison {
  config: number;
  params: Record<string, unknown>;
  metric: string;
  unit: string;
  real: { median: number; min: number; max: number; runs: number };
  model: number;
  /** model / real median; null when the real median is 0. */
  ratio: number | null;
  /** The model lies within the real runs' min–max or within ±25 % of their median. */
  agrees: boolean;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/**
 * A `real sweep` directory against the model: every configuration's successful real runs (median,
 * min–max) beside the model run with the same scenarios and seeds (median over the replications),
 * each as the real harness ran it (modelOfReal) on `host`.
 */
export function compareReal(dir: string, onRun?: (done: number, total: number) => void, host: RealHost = {}): RealComparison[] {
  let manifest: { kind?: string; base?: ScenarioInput };
  try {
    manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as typeof manifest;
  } catch (e) {
    throw new UsageError(`${dir} is not a real sweep directory (manifest.json: ${(e as Error).message})`);
  }
  if (manifest.kind !== 'real' || manifest.base === undefined) throw new UsageError(`${dir} was not written by \`postcopy-emu real sweep\``);
  const byConfig = new Map<number, RunRecord[]>();
  for (const r of readRecords(dir).records) if (r.status === 'ok') byConfig.set(r.config, [...(byConfig.get(r.config) ?? []), r]);
  if (byConfig.size === 0) throw new UsageError(`${dir} holds no successful real runs`);
  const base = manifest.base;
  const out: RealComparison[] = [];
  let done = 0;
  const total = [...byConfig.values()].reduce((n, rs) => n + rs.length, 0);
  for (const [config, runs] of [...byConfig].sort((a, b) => a[0] - b[0])) {
    const models = runs.map((run) => {
      onRun?.(done++, total);
      const real = (run.result as { real?: { bandwidth?: string; 'qemu-version'?: string; guest?: { 'page-ns'?: number | null } } } | undefined)?.real;
      const facts = { uncapped: real?.bandwidth === 'uncapped', pageNs: real?.guest?.['page-ns'], qemuVersion: real?.['qemu-version'] };
      return runScenario(modelOfReal(scenarioOf({ base }, run), facts, host)).report;
    });
    for (const [metric, unit, of] of REAL_METRICS) {
      const reals = runs.map((r) => of(r.result!));
      const real = { median: median(reals), min: Math.min(...reals), max: Math.max(...reals), runs: reals.length };
      const model = median(models.map(of));
      const ratio = real.median === 0 ? null : model / real.median;
      const agrees = (model >= real.min && model <= real.max) || (ratio !== null && Math.abs(ratio - 1) <= 0.25);
      out.push({ config, params: runs[0]!.params, metric, unit, real, model, ratio, agrees });
    }
  }
  return out;
}

const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(2));

/** The comparison as one table per configuration: real median [min–max], model, ratio, agreement. */
export function formatReal(rows: readonly RealComparison[]): string {
  const lines: string[] = [];
  for (const config of [...new Set(rows.map((r) => r.config))]) {
    const mine = rows.filter((r) => r.config === config);
    lines.push(`configuration ${config} ${JSON.stringify(mine[0]!.params)}: ${mine[0]!.real.runs} real runs`);
    const cells = mine.map((r) => [
      r.unit ? `${r.metric} (${r.unit})` : r.metric,
      `${fmt(r.real.median)} [${fmt(r.real.min)}–${fmt(r.real.max)}]`,
      fmt(r.model),
      r.ratio === null ? '-' : `×${r.ratio.toFixed(2)}`,
      r.agrees ? 'yes' : 'no',
    ]);
    const head = ['metric', 'real median [min–max]', 'model', 'model/real', 'agrees'];
    const w = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
    const line = (c: string[]) => c.map((x, i) => (i === 0 ? x.padEnd(w[i]!) : x.padStart(w[i]!))).join('  ');
    lines.push(line(head), line(w.map((n) => '-'.repeat(n))), ...cells.map(line), '');
  }
  const agree = rows.filter((r) => r.agrees).length;
  lines.push(`${agree} of ${rows.length} figures agree (within the real runs' min–max or ±25 % of their median)`);
  return `${lines.join('\n')}\n`;
}
