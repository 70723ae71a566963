import type { TopLevelSpec } from 'vega-lite';
import { LATENCY_BUCKETS } from '../metrics/latency.ts';
import { formatValue, type MetricPoint } from './configs.ts';
import { CONFIG, HEIGHT, WIDTH, colour, facetBySeries, faceted, palette } from './style.ts';
import { loadVega } from './vega.ts';

/** Renders a Vega-Lite spec to an SVG string in Node, so the page needs no script to show it. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const { vega, vegaLite } = await loadVega();
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    // A tenth of a pixel is finer than any screen: this halves the size of long series' paths.
    return svg.replace(/ d="([^"]*)"/g, (_, d: string) => ` d="${d.replace(/(\.\d)\d+/g, '$1')}"`);
  } finally {
    view.finalize();
  }
}

/** A duration in µs in the unit a person would say it in: 512 µs, 1.02 ms, 8.39 s. */
export function formatMicros(us: number): string {
  if (us < 1e3) return `${us} µs`;
  if (us < 1e6) return `${Number((us / 1e3).toPrecision(3))} ms`;
  return `${Number((us / 1e6).toPrecision(3))} s`;
}

const NUMBER = new Intl.NumberFormat('en-US', { maximumSignificantDigits: 6 });

/**
 * Labels of QEMU's buckets first…last (bucket N holds [2^N µs, 2^(N+1) µs); the last takes the
 * rest): lower bounds in one unit for the axis title, µs while they have at most 5 digits, else ms.
 */
export function bucketLabels(first: number, last: number): { unit: 'µs' | 'ms'; labels: string[] } {
  // The last bucket starts at 2^23 µs: 8,390 ms is as long as a label gets.
  const [unit, div] = 2 ** last < 1e5 ? ['µs' as const, 1] : ['ms' as const, 1e3];
  const labels = Array.from({ length: last - first + 1 }, (_, k) => {
    const i = first + k;
    // Powers of two are exact in µs; in ms three digits say enough (1.02, 262).
    return (i === LATENCY_BUCKETS - 1 ? '≥ ' : '') + NUMBER.format(div === 1 ? 2 ** i : Number((2 ** i / div).toPrecision(3)));
  });
  return { unit, labels };
}

/** Narrower bar slots than this (px, before padding) are split into a strip per series. */
const MIN_SLOT = 10;

/** How a view draws its series: the colour channel (none past 20 series), and its y axis. */
interface Look {
  color?: ReturnType<typeof colour>;
  facet: boolean;
  /** The y channel's title and axis: in strips the row title says it once, and 3 ticks fit. */
  y: (title: string, format?: string) => { title: string | null; axis?: { format?: string; tickCount?: number } };
}

/**
 * A plot with a series per configuration: one view with a colour per series, or a strip per
 * series when there are more series than distinct colours (or `o.strips` asks for them).
 */
function perSeries(
  description: string, data: readonly object[], series: readonly string[], yTitle: string,
  view: (look: Look) => object, o: { strips?: boolean; freeY?: boolean } = {},
): TopLevelSpec {
  if (faceted(series) || o.strips) {
    const y: Look['y'] = (_, format) => ({ title: null, axis: { tickCount: 3, ...(format ? { format } : {}) } });
    // Up to 20 series keep their colours in strips too, so a configuration looks the same in every plot.
    const look: Look = { facet: true, y, ...(faceted(series) ? {} : { color: colour(series, false) }) };
    return facetBySeries(description, data, series, yTitle, view(look), o.freeY) as TopLevelSpec;
  }
  const y: Look['y'] = (title, format) => ({ title, ...(format ? { axis: { format } } : {}) });
  return { description, config: CONFIG, width: WIDTH, height: HEIGHT, data: { values: [...data] }, ...view({ facet: false, y, color: colour(series) }) } as TopLevelSpec;
}

/** A single colour for marks that have no colour channel. */
const plain = (look: Look) => (look.color ? {} : { color: palette(1)[0]! });

export interface CdfPoint {
  series: string;
  us: number;
  q: number;
}

export function latencyCdfSpec(points: readonly CdfPoint[], series: readonly string[]): TopLevelSpec {
  const us = points.map((p) => p.us);
  const lo = Math.min(...us), hi = Math.max(...us);
  // A log scale cannot span a single value: widen it to a factor of 2 each side.
  const domain = lo === hi ? [lo / 2, hi * 2] : undefined;
  const yTitle = 'faults answered within x (%)';
  return perSeries('Fault latency CDF', points, series, yTitle, (look) => ({
    mark: { type: 'line', point: true, ...plain(look) },
    encoding: {
      x: { field: 'us', type: 'quantitative', scale: { type: 'log', ...(domain ? { domain } : {}) }, title: 'fault latency (µs, log scale)' },
      y: { field: 'q', type: 'quantitative', scale: { domain: [0, 1] }, ...look.y(yTitle, '.0%') },
      ...(look.color ? { color: look.color } : {}),
    },
  }));
}

/**
 * One bar per category per series: side by side while each bar gets MIN_SLOT px, else a strip
 * per series (with its own y scale if `freeY`, so a series with few faults still shows its shape).
 */
function barsSpec(
  description: string, rows: readonly object[], series: readonly string[], categories: readonly string[],
  x: { field: string; title: string }, y: { field: string; title: string; format?: string }, freeY = false,
): TopLevelSpec {
  const strips = WIDTH / (categories.length * series.length) < MIN_SLOT;
  const side = series.length > 1 && !strips && !faceted(series);
  return perSeries(description, rows, series, y.title, (look) => ({
    mark: { type: 'bar', ...plain(look) },
    encoding: {
      x: {
        field: x.field, type: 'ordinal', sort: [...categories], title: x.title,
        scale: { domain: [...categories], paddingInner: side ? 0.15 : categories.length > 30 ? 0.2 : 0.3 },
        // Many short labels (occupancies 0…64) level, every other one; a few long ones slanted.
        axis: categories.length > 30 ? { labelAngle: 0, labelOverlap: 'parity' } : { labelAngle: categories.length > 12 ? -45 : 0 },
      },
      ...(side ? { xOffset: { field: 'series', type: 'nominal', sort: [...series] } } : {}),
      y: { field: y.field, type: 'quantitative', ...look.y(y.title, y.format) },
      ...(look.color ? { color: look.color } : {}),
    },
  }), { strips, freeY });
}

export interface HistogramBar {
  series: string;
  /** QEMU's bucket number N: latencies in [2^N µs, 2^(N+1) µs). */
  bucket: number;
  count: number;
}

/** Only the buckets from the first to the last that any series has faults in: the rest are empty. */
export function histogramSpec(bars: readonly HistogramBar[], series: readonly string[], yTitle: string): TopLevelSpec {
  const used = bars.filter((b) => b.count > 0).map((b) => b.bucket);
  const first = used.length ? Math.min(...used) : 0, last = used.length ? Math.max(...used) : LATENCY_BUCKETS - 1;
  const { unit, labels } = bucketLabels(first, last);
  const rows = bars.filter((b) => b.bucket >= first && b.bucket <= last).map((b) => ({ ...b, bucket: labels[b.bucket - first]! }));
  return barsSpec('Fault latency histogram', rows, series, labels,
    { field: 'bucket', title: `fault latency bucket (${unit}, lower bound)` }, { field: 'count', title: yTitle }, true);
}

export interface OccupancyBar {
  series: string;
  /** An occupancy, or a range "a–b" of them when the ring is large. */
  slots: string;
  share: number;
}

export function occupancySpec(bars: readonly OccupancyBar[], series: readonly string[], categories: readonly string[], yTitle: string): TopLevelSpec {
  return barsSpec('Ring occupancy: share of time', bars, series, categories,
    { field: 'slots', title: 'ring occupancy (slots holding a request)' }, { field: 'share', title: yTitle, format: '.0%' });
}

export interface TimePoint {
  series: string;
  t: number;
  v: number;
}

/** A time series per configuration; `limit` draws a dashed line at a bound (guest pages). */
export function timelineSpec(
  description: string, points: readonly TimePoint[], series: readonly string[], xTitle: string, yTitle: string, limit?: number,
): TopLevelSpec {
  return perSeries(description, points, series, yTitle, (look) => {
    const line = {
      mark: { type: 'line' as const, ...plain(look) },
      encoding: {
        x: { field: 't', type: 'quantitative' as const, title: xTitle },
        y: { field: 'v', type: 'quantitative' as const, ...look.y(yTitle) },
        ...(look.color ? { color: look.color } : {}),
      },
    };
    if (limit === undefined) return line;
    // One row per strip (or one in all) for the rule: with the samples it would repeat per sample.
    const rule = {
      transform: [{ aggregate: [{ op: 'count' as const, as: 'n' }], groupby: look.facet ? ['series'] : [] }],
      mark: { type: 'rule' as const, strokeDash: [6, 4], color: '#888' },
      encoding: { y: { datum: limit } },
    };
    return { layer: [line, rule] };
  });
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
export function metricSpec(points: readonly MetricPoint[], axisValues: readonly unknown[], xTitle: string, yTitle: string): TopLevelSpec {
  const series = [...new Set(points.map((p) => p.series))];
  const numeric = points.every((p) => typeof p.x === 'number');
  const log = geometric(points.map((p) => p.x));
  // Values such as { kind: buckets, count: 64 } are read whole: level when they fit side by side.
  const labels = axisValues.map(formatValue);
  const flat = Math.max(...labels.map((l) => l.length)) * 7 < WIDTH / labels.length;
  // Ticks at the swept values: the only x at which anything was measured.
  const ticks = numeric && axisValues.length <= 12 ? { axis: { values: [...new Set(points.map((p) => p.x as number))].sort((a, b) => a - b) } } : {};
  const x = numeric
    ? { field: 'x', type: 'quantitative' as const, scale: log ? { type: 'log' as const, nice: false } : { zero: false }, title: xTitle, ...ticks }
    : { field: 'x', type: 'ordinal' as const, sort: labels, title: xTitle, axis: { labelLimit: 0, labelAngle: flat ? 0 : -30 } };
  const values = points.map((p) => ({ ...p, x: numeric ? p.x : formatValue(p.x) }));
  return perSeries(`${yTitle} against ${xTitle}`, values, series, yTitle, (look) => {
    const c = look.color ? { color: look.color } : {};
    const y = { field: 'mean', type: 'quantitative' as const, ...look.y(yTitle) };
    const spread = points.some((p) => p.n > 1)
      ? [{ mark: { type: 'rule' as const, ...plain(look) }, encoding: { x, y: { ...y, field: 'min' }, y2: { field: 'max' }, ...c } }]
      : [];
    return { layer: [{ mark: { type: 'line', point: true, ...plain(look) }, encoding: { x, y, ...c } }, ...spread] };
  });
}

/** One part of one configuration's downtime (ms). */
export interface DowntimePart {
  series: string;
  part: string;
  ms: number;
}

/**
 * The downtime split into its parts, one stacked bar per configuration, in the order the parts
 * happen (the parts sum to the downtime).
 */
export function downtimeSpec(parts: readonly DowntimePart[], series: readonly string[], order: readonly string[], xTitle: string): TopLevelSpec {
  const colours = palette(order.length);
  return {
    description: 'Downtime breakdown',
    config: CONFIG,
    width: WIDTH,
    height: Math.max(60, 28 * series.length),
    data: { values: parts.map((p) => ({ ...p, order: order.indexOf(p.part) })) },
    mark: { type: 'bar' },
    encoding: {
      y: { field: 'series', type: 'nominal', sort: [...series], title: null, axis: { labelLimit: 420 } },
      x: { field: 'ms', type: 'quantitative', stack: 'zero', title: xTitle },
      color: { field: 'part', type: 'nominal', sort: [...order], scale: { domain: [...order], range: colours }, legend: { title: null, orient: 'bottom', columns: 4 } },
      order: { field: 'order', type: 'quantitative' },
    },
  } as TopLevelSpec;
}
