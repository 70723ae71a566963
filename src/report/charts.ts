import { View, parse } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { LATENCY_BUCKETS } from '../metrics/latency.ts';
import { formatValue, type MetricPoint } from './configs.ts';

const WIDTH = 680;
const HEIGHT = 280;

/** Renders a Vega-Lite spec to an SVG string in Node, so the page needs no script to show it. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    // A tenth of a pixel is finer than any screen: this halves the size of long series' paths.
    return svg.replace(/ d="([^"]*)"/g, (_, d: string) => ` d="${d.replace(/(\.\d)\d+/g, '$1')}"`);
  } finally {
    view.finalize();
  }
}

/** The base of every plot: size, fonts, and the color series (no legend for a single one). */
function base(description: string, series: readonly string[]) {
  return {
    top: {
      description,
      width: WIDTH,
      height: HEIGHT,
      config: { font: 'sans-serif', axis: { labelFontSize: 11, titleFontSize: 12 }, legend: { labelFontSize: 11 } },
    },
    color: {
      field: 'series',
      type: 'nominal' as const,
      sort: [...series],
      // Never truncate a label (limit 0): it names a configuration. Node estimates text at 0.8 em
      // a character, so two columns only when short labels fit side by side at that estimate.
      legend: series.length > 1
        ? { orient: 'bottom' as const, title: null, labelLimit: 0, columns: Math.max(...series.map((l) => l.length)) <= 30 ? 2 : 1 }
        : null,
    },
  };
}

/** A duration in µs in the unit a person would say it in: 512 µs, 1.02 ms, 8.39 s. */
export function formatMicros(us: number): string {
  if (us < 1e3) return `${us} µs`;
  if (us < 1e6) return `${Number((us / 1e3).toPrecision(3))} ms`;
  return `${Number((us / 1e6).toPrecision(3))} s`;
}

/** QEMU's bucket N holds [2^N µs, 2^(N+1) µs), labelled by its lower bound; the last takes the rest. */
export const BUCKET_LABELS = Array.from({ length: LATENCY_BUCKETS }, (_, i) =>
  (i === LATENCY_BUCKETS - 1 ? '≥ ' : '') + formatMicros(2 ** i));

export interface CdfPoint {
  series: string;
  us: number;
  q: number;
}

export function latencyCdfSpec(points: readonly CdfPoint[], series: readonly string[]): TopLevelSpec {
  const b = base('Fault latency CDF', series);
  const us = points.map((p) => p.us);
  const lo = Math.min(...us), hi = Math.max(...us);
  // A log scale cannot span a single value: widen it to a factor of 2 each side.
  const domain = lo === hi ? [lo / 2, hi * 2] : undefined;
  return {
    ...b.top,
    data: { values: [...points] },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'us', type: 'quantitative', scale: { type: 'log', ...(domain ? { domain } : {}) }, title: 'fault latency (µs, log scale)' },
      y: { field: 'q', type: 'quantitative', scale: { domain: [0, 1] }, axis: { format: '.0%' }, title: 'fraction of faults with latency ≤ x' },
      color: b.color,
    },
  };
}

export interface HistogramBar {
  series: string;
  bucket: string;
  count: number;
}

export function histogramSpec(bars: readonly HistogramBar[], series: readonly string[], yTitle: string): TopLevelSpec {
  const b = base('Fault latency histogram', series);
  return {
    ...b.top,
    data: { values: [...bars] },
    mark: 'bar',
    encoding: {
      x: { field: 'bucket', type: 'ordinal', sort: [...BUCKET_LABELS], axis: { labelAngle: -45 }, title: 'fault latency bucket (lower bound)' },
      ...(series.length > 1 ? { xOffset: { field: 'series', type: 'nominal', sort: [...series] } } : {}),
      y: { field: 'count', type: 'quantitative', title: yTitle },
      color: b.color,
    },
  };
}

export interface TimePoint {
  series: string;
  s: number;
  v: number;
}

/** A time series per configuration; `limit` draws a dashed line at a bound (ring capacity, guest pages). */
export function timelineSpec(
  description: string, points: readonly TimePoint[], series: readonly string[], yTitle: string,
  o: { step: boolean; limit?: number },
): TopLevelSpec {
  const b = base(description, series);
  const line = {
    mark: { type: 'line' as const, interpolate: o.step ? ('step-after' as const) : ('linear' as const) },
    encoding: {
      x: { field: 's', type: 'quantitative' as const, title: 'time since the guest was paused (s)' },
      y: { field: 'v', type: 'quantitative' as const, title: yTitle },
      color: b.color,
    },
  };
  if (o.limit === undefined) return { ...b.top, data: { values: [...points] }, ...line };
  return {
    ...b.top,
    data: { values: [...points] },
    // The rule gets a one-row data set of its own; with the layer's it would repeat once per sample.
    layer: [line, { data: { values: [{}] }, mark: { type: 'rule', strokeDash: [6, 4], color: '#888' }, encoding: { y: { datum: o.limit } } }],
  };
}

/**
 * Whether axis values grow geometrically (1, 2, 4, … or 1k, 10k, 100k), as ring.capacity or
 * memory.pages often do: a log scale spaces them evenly instead of crowding the small ones.
 */
export function geometric(values: readonly unknown[]): boolean {
  if (!values.every((v) => typeof v === 'number')) return false;
  const xs = [...new Set(values as number[])].sort((a, b) => a - b);
  return xs[0]! > 0 && xs.at(-1)! / xs[0]! >= 8 && xs.every((v, i) => i === 0 || v / xs[i - 1]! >= 1.5);
}

/**
 * The metric's mean against one axis, a line per combination of the other axes; a vertical bar
 * spans min..max over the replications when there are several.
 */
export function metricSpec(points: readonly MetricPoint[], axisValues: readonly unknown[], axis: string, metric: string): TopLevelSpec {
  const series = [...new Set(points.map((p) => p.series))];
  const b = base(`${metric} against ${axis}`, series);
  const numeric = points.every((p) => typeof p.x === 'number');
  const log = geometric(points.map((p) => p.x));
  // Values such as { kind: buckets, count: 64 } are read whole: level when they fit side by side.
  const labels = axisValues.map(formatValue);
  const flat = Math.max(...labels.map((l) => l.length)) * 7 < WIDTH / labels.length;
  const x = numeric
    ? { field: 'x', type: 'quantitative' as const, scale: log ? { type: 'log' as const, nice: false } : { zero: false }, title: axis }
    : { field: 'x', type: 'ordinal' as const, sort: labels, title: axis, axis: { labelLimit: 0, labelAngle: flat ? 0 : -30 } };
  const values = points.map((p) => ({ ...p, x: numeric ? p.x : formatValue(p.x) }));
  const y = { field: 'mean', type: 'quantitative' as const, title: points.some((p) => p.n > 1) ? `${metric} (mean)` : metric };
  const spread = points.some((p) => p.n > 1)
    ? [{ mark: { type: 'rule' as const }, encoding: { x, y: { field: 'min', type: 'quantitative' as const }, y2: { field: 'max' }, color: b.color } }]
    : [];
  return {
    ...b.top,
    data: { values },
    layer: [{ mark: { type: 'line', point: true }, encoding: { x, y, color: b.color } }, ...spread],
  };
}
