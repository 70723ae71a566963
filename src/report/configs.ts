import { basename } from 'node:path';
import YAML from 'yaml';
import { UsageError } from '../io/errors.ts';
import type { ReportInput, RunRecord, RunResult, SweepInput, Timeline } from './input.ts';

/** One configuration of a sweep, or the single run: what every plot draws one series of. */
export interface Config {
  index: number;
  label: string;
  params: Record<string, unknown>;
  /** Results of the successful replications, in replication order. */
  results: RunResult[];
  failed: RunRecord[];
}

/** An axis value as a person reads it: strings bare, anything else in YAML flow (as for --set). */
export function formatValue(v: unknown): string {
  return typeof v === 'string' ? v : YAML.stringify(v, { collectionStyle: 'flow' }).trim();
}

/** "path=value, path=value" for the given axes of a configuration. */
export function paramsLabel(params: Record<string, unknown>, axes: readonly string[]): string {
  return axes.map((a) => `${a}=${formatValue(params[a])}`).join(', ');
}

export const axesOf = (input: SweepInput): string[] => Object.keys(input.manifest.sweep.axes);

export function configsOf(input: ReportInput): Config[] {
  if (input.kind === 'run') {
    const label = input.result.emulator.scenario || basename(input.path);
    return [{ index: 0, label, params: {}, results: [input.result], failed: [] }];
  }
  const axes = axesOf(input);
  const byConfig = new Map<number, Config>();
  for (const r of input.records) {
    let c = byConfig.get(r.config);
    if (!c) byConfig.set(r.config, (c = { index: r.config, label: paramsLabel(r.params, axes), params: r.params, results: [], failed: [] }));
    if (r.status === 'ok') c.results.push(r.result!);
    else c.failed.push(r);
  }
  return [...byConfig.values()].sort((a, b) => a.index - b.index);
}

export const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * Latency (ns) at quantiles 0, 5, …, 100, averaged quantile by quantile over the replications
 * that had faults; null when none had any (a run without faults has no latency distribution).
 */
export function meanCdf(c: Config): number[] | null {
  const cdfs = c.results.filter((r) => r.emulator['fault-latency'].count > 0).map((r) => r.emulator['fault-latency'].cdf);
  if (cdfs.length === 0) return null;
  return cdfs[0]!.map((_, i) => mean(cdfs.map((q) => q[i]!)));
}

/** Faults per log2-µs bucket, averaged over the replications. */
export function meanHistogram(c: Config): number[] {
  const dists = c.results.map((r) => r['postcopy-latency-dist']);
  return dists[0]!.map((_, i) => mean(dists.map((d) => d[i]!)));
}

/** The first replication's time series: runs differ in length, so series are not averaged. */
export function firstTimeline(c: Config): { timeline: Timeline; result: RunResult } | null {
  const result = c.results.find((r) => r.emulator.timeline);
  return result ? { timeline: result.emulator.timeline!, result } : null;
}

/** A mean (and spread) of the metric for one configuration, placed on the chosen axis. */
export interface MetricPoint {
  x: unknown;
  series: string;
  mean: number;
  min: number;
  max: number;
  n: number;
}

function lookup(obj: unknown, path: string): unknown {
  let v = obj;
  for (const k of path.split('.')) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, k)) return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

/**
 * The metric's path in a run result. `result.` in front is accepted too, as runs.csv and
 * metrics.md name columns that way. Every successful run must hold a number there.
 */
export function resolveMetric(configs: readonly Config[], metric: string): string {
  const results = configs.flatMap((c) => c.results);
  const candidates = metric.startsWith('result.') ? [metric, metric.slice('result.'.length)] : [metric];
  const path = candidates.find((p) => lookup(results[0], p) !== undefined);
  if (path === undefined) throw new UsageError(`--metric ${metric}: no such field in the run results (e.g. downtime, total-time, emulator.ring.time-full)`);
  for (const r of results) {
    const v = lookup(r, path);
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new UsageError(`--metric ${metric}: not a number in every run (got ${JSON.stringify(v)} in scenario ${r.emulator.scenario} seed ${r.emulator.seed})`);
    }
  }
  return path;
}

export function resolveAxis(input: SweepInput, axis: string | undefined): string {
  const axes = axesOf(input);
  if (axis === undefined) return axes[0]!;
  if (!axes.includes(axis)) throw new UsageError(`--axis ${axis}: not an axis of this sweep (axes: ${axes.join(', ')})`);
  return axis;
}

/** One point per configuration with results: the metric's mean over replications, against the axis. */
export function metricPoints(input: SweepInput, configs: readonly Config[], metric: string, axis: string): MetricPoint[] {
  const others = axesOf(input).filter((a) => a !== axis);
  return configs.filter((c) => c.results.length > 0).map((c) => {
    const values = c.results.map((r) => lookup(r, metric) as number);
    return {
      x: c.params[axis],
      series: paramsLabel(c.params, others),
      mean: mean(values),
      min: Math.min(...values),
      max: Math.max(...values),
      n: values.length,
    };
  });
}
