import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../io/errors.ts';
import type { RunReport } from '../metrics/report.ts';
import { runScenario } from '../run.ts';
import type { ScenarioInput } from '../scenario/schema.ts';
import { parseScenario } from '../scenario/validate.ts';
import { readRecords, type RunRecord } from '../sweep/output.ts';
import { scenarioOf } from '../sweep/spec.ts';

/**
 * The wire a real run had: loopback TCP between two QEMU processes on this host's two cores.
 * Its rate is what QEMU moved uncapped: 515 MiB of ram1g-seq256-precopy-unl in 1042 ms, 4.15
 * Gbit/s (shared/reference/real-qemu.md; its uncapped runs spread over 2.2–6.4 Gbit/s, CPU-bound).
 * Its latency is half a loopback TCP ping-pong, 11,968 ns (`live --calibrate`,
 * examples/host-local.yaml).
 */
export const LOOPBACK = { rateMbps: 4_150, latencyNs: 11_968 };

/**
 * The model of a real run: the real harness turned `link.rateMbps` into QEMU's rate limits
 * (`max-bandwidth`, `max-postcopy-bandwidth`: a budget per 100 ms window, then a sleep) on a
 * loopback wire, not into a wire of that rate; an uncapped run had the wire alone.
 */
export function modelOfReal(input: ScenarioInput, uncapped: boolean, wireMbps = LOOPBACK.rateMbps): ScenarioInput {
  const s = parseScenario(input);
  const wire = { ...s.link, rateMbps: wireMbps, latencyNs: LOOPBACK.latencyNs };
  const limit = uncapped ? 0 : Math.round((s.link.rateMbps * 1e6) / 8);
  return {
    ...input,
    link: wire,
    backChannel: { ...s.backChannel, rateMbps: wireMbps, latencyNs: LOOPBACK.latencyNs },
    precopy: { ...input.precopy, maxBandwidth: limit },
    source: { ...input.source, maxPostcopyBandwidth: limit },
  };
}

/** The figures held against the real runs, each read from a run report (ms, bytes, counts). */
export const REAL_METRICS: ReadonlyArray<[name: string, unit: string, of: (r: RunReport) => number]> = [
  ['total-time', 'ms', (r) => r['total-time']],
  ['downtime', 'ms', (r) => r.downtime],
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
 * each as the real harness ran it (modelOfReal) on a wire of `wireMbps`.
 */
export function compareReal(dir: string, onRun?: (done: number, total: number) => void, wireMbps = LOOPBACK.rateMbps): RealComparison[] {
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
      const uncapped = (run.result as { real?: { bandwidth?: string } } | undefined)?.real?.bandwidth === 'uncapped';
      return runScenario(modelOfReal(scenarioOf({ base }, run), uncapped, wireMbps)).report;
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
