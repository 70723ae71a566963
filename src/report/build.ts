import { basename, resolve } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { UsageError } from '../io/errors.ts';
import { CDF_QUANTILES } from '../metrics/report.ts';
import {
  downtimeSpec, formatMicros, geometric, histogramSpec, latencyCdfSpec, metricSpec, occupancySpec, renderSvg, timelineSpec,
  type CdfPoint, type HistogramBar, type TimePoint,
} from './charts.ts';
import {
  axesOf, configsOf, firstTimeline, formatValue, meanCdf, meanHistogram, metricPoints, resolveAxis, resolveMetric,
  type Config,
} from './configs.ts';
import { figure, note, page, specsNote } from './html.ts';
import type { ReportInput, RunResult, SweepInput } from './input.ts';
import { occupancyShares } from './occupancy.ts';
import { failedRuns, runSummary, sweepSummary } from './summary.ts';
import { meanOf, metricUnit, paramUnit, timeScale, titled } from './units.ts';
import { loadVega } from './vega.ts';

export interface ReportOptions {
  /** Dotted path of a number in the run result, for the sweep's metric chart (default downtime). */
  metric?: string;
  /** The sweep axis on the metric chart's x (default the first axis). */
  axis?: string;
}

/** A plot of the report: `name` makes its spec file's name, STEM-NAME.vl.json. */
export interface Plot {
  id: string;
  name: string;
  heading: string;
  how: string;
  spec: TopLevelSpec;
}

/** Plots, or HTML already made (tables, notes), in page order. */
type Section = Plot | string;

export interface Report {
  html: string;
  /** Each plot's spec file name and its Vega-Lite spec, data inlined. */
  specs: Array<{ file: string; spec: TopLevelSpec }>;
}

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

/**
 * The report's page and its plots' specs. With `specStem` the page names the spec files
 * STEM-NAME.vl.json that the caller writes beside it; without, it mentions none.
 */
export async function buildReport(input: ReportInput, o: ReportOptions & { specStem?: string } = {}): Promise<Report> {
  // The specs' colours come from vega's schemes.
  await loadVega();
  const { title, meta, sections } = layout(input, o);
  const specFile = (p: Plot) => (o.specStem === undefined ? undefined : `${o.specStem}-${p.name}.vl.json`);
  const parts = await Promise.all(sections.map(async (s) =>
    (typeof s === 'string' ? s : figure(s.id, s.heading, s.how, await renderSvg(s.spec), specFile(s)))));
  const plots = sections.filter((s): s is Plot => typeof s !== 'string');
  return {
    html: page(title, meta, parts, o.specStem === undefined || plots.length === 0 ? '' : specsNote(`${o.specStem}-*.vl.json`)),
    specs: o.specStem === undefined ? [] : plots.map((p) => ({ file: specFile(p)!, spec: { $schema: SCHEMA, ...p.spec } as TopLevelSpec })),
  };
}

function layout(input: ReportInput, o: ReportOptions): { title: string; meta: [string, string][]; sections: Section[] } {
  const configs = configsOf(input);
  if (input.kind === 'run') {
    if (o.metric !== undefined || o.axis !== undefined) throw new UsageError('--metric and --axis apply to a sweep directory, not a single run');
    const r = input.result;
    const meta: [string, string][] = [
      ['input', basename(input.path)], ['scenario', r.emulator.scenario], ['seed', String(r.emulator.seed)], ['status', r.status],
    ];
    const sections = [runSummary(configs[0]!), ...downtimeSections(configs, false), ...distributionSections(configs, false), ...timelineSections(configs, false)];
    return { title: `postcopy-emu report: ${configs[0]!.label}`, meta, sections };
  }
  const failed = failedRuns(configs);
  const sections = [
    metricSection(input, configs, o),
    sweepSummary(configs, axesOf(input)),
    ...downtimeSections(configs, true),
    ...distributionSections(configs, true),
    ...timelineSections(configs, true),
    ...(failed ? [failed] : []),
  ];
  return { title: `postcopy-emu sweep report: ${basename(resolve(input.dir))}`, meta: sweepMeta(input), sections };
}

function sweepMeta(input: SweepInput): [string, string][] {
  const m = input.manifest;
  const failed = input.records.filter((r) => r.status === 'failed').length;
  const commit = typeof m['commit'] === 'string' ? ` (${m['commit'].slice(0, 12)})` : '';
  return [
    ['input', basename(resolve(input.dir))],
    ['tool', `${m.tool} ${m.version}${commit}`],
    ['base', formatValue(m.sweep.base)],
    ...Object.entries(m.sweep.axes).map(([a, vs]): [string, string] => [`axis ${a}`, vs.map(formatValue).join(', ')]),
    ['replications', String(m.sweep.replications)],
    ['seed', String(m.sweep.seed)],
    ['runs', `${input.records.length} of ${m.runs} recorded, ${failed} failed`
      + (input.tornLines ? `; ${input.tornLines} unreadable line(s) of an interrupted sweep skipped` : '')],
  ];
}

function metricSection(input: SweepInput, configs: readonly Config[], o: ReportOptions): Plot {
  const axis = resolveAxis(input, o.axis);
  const metric = resolveMetric(configs, o.metric ?? 'downtime');
  const points = metricPoints(input, configs, metric, axis);
  const axisValues = input.manifest.sweep.axes[axis]!;
  const unit = metricUnit(metric);
  const yTitle = titled(metric, unit ?? 'unit as in the run JSON', meanOf(points.map((p) => p.n)) ?? '');
  const spec = metricSpec(points, axisValues, titled(axis, paramUnit(axis, axisValues)), yTitle);
  const others = axesOf(input).filter((a) => a !== axis);
  const spread = points.some((p) => p.n > 1) ? ' The vertical bar through a point spans its smallest to its largest replication.' : '';
  const how = `Each point is one configuration: the mean of ${metric} over its successful replications, against ${axis}.`
    + (others.length > 0 ? ` Each line holds ${others.join(' and ')} fixed at the values its legend names.` : '')
    + spread
    + (geometric(points.map((p) => p.x)) ? ` The ${axis} axis is logarithmic.` : '')
    + ' Plot another figure with --metric PATH (any number in the run JSON, e.g. emulator.ring.time-full; metrics.md gives units) and --axis PATH.';
  return { id: 'plot-metric', name: 'metric', heading: `${metric} against ${axis}`, how, spec };
}

/** emulator.downtime-breakdown's parts, in the order they happen, with their labels. */
const DOWNTIME_PARTS: [key: string, label: string][] = [
  ['device-stop-ms', 'device stop arcs'], ['ram-ms', 'RAM: final sync and send'], ['device-transfer-ms', 'device state sent'],
  ['drain-ms', 'wire drain'], ['device-load-ms', 'device load and start'], ['vcpu-state-ms', 'CPU and device-model state'],
  ['switchover-ms', 'destination switchover'],
];

/**
 * The downtime split into its parts (docs/devices.md), when some run had a precopy phase or
 * devices (otherwise all of it is the switchover, and the summary says so).
 */
function downtimeSections(configs: readonly Config[], sweep: boolean): Section[] {
  const shown = configs.filter((c) => c.results.some((r) => r.emulator['downtime-breakdown'] && (r.emulator.precopy || r.emulator.devices)));
  if (shown.length === 0) return [];
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const parts = shown.flatMap((c) => DOWNTIME_PARTS.map(([key, part]) => ({
    series: c.label, part, ms: mean(c.results.map((r) => (r.emulator['downtime-breakdown'] as Record<string, number> | null)?.[key] ?? 0)),
  })));
  const how = 'Each bar is a run\'s downtime, from pausing the guest at the source to running it at the destination, split in the order its parts happen:'
    + ' the devices\' quiesce and stop arcs, RAM\'s final sync and send, the devices\' stop-copy data, the wire draining, the device loads and starts left at the destination,'
    + ' the CPU and device-model state, and the destination\'s switchover work.'
    + (sweep ? ' One bar per configuration, the mean over its replications.' : '');
  return [{
    id: 'plot-downtime', name: 'downtime', heading: 'Downtime breakdown', how,
    spec: downtimeSpec(parts, shown.map((c) => c.label), DOWNTIME_PARTS.map(([, l]) => l), 'downtime (ms)'),
  }];
}

/** The fault-latency CDF and the log2 histogram, or a note when no run had a fault. */
function distributionSections(configs: readonly Config[], sweep: boolean): Section[] {
  const withFaults = configs.flatMap((c) => {
    const cdf = meanCdf(c);
    return cdf ? [{ c, cdf }] : [];
  });
  if (withFaults.length === 0) {
    const what = sweep ? 'No run of the sweep had a fault' : 'No fault happened in this run';
    return [note('note-latency', 'Fault latency', `${what}, so there is no latency to plot.`)];
  }
  const series = withFaults.map(({ c }) => c.label);
  const cdfPoints: CdfPoint[] = withFaults.flatMap(({ c, cdf }) =>
    cdf.flatMap((ns, i) => (ns > 0 ? [{ series: c.label, us: ns / 1000, q: CDF_QUANTILES[i]! / 100 }] : [])));
  const left = configs.length - withFaults.length;
  const per = sweep ? 'configuration' : 'run';
  const cdfHow = `Each line is one ${per}: a point at (x, y) says that a fraction y of the faults were answered within x µs.`
    + ` The points are the 21 measured quantiles 0 %, 5 %, …, 100 %${sweep ? ', each averaged over the replications' : ''}.`
    + ' Further left is faster; a steep rise means many faults waited about the same time, a long tail to the right means a few waited far longer. The x axis is logarithmic.'
    + (left > 0 ? ` ${left} ${per}(s) without faults are left out.` : '');

  const bars: HistogramBar[] = withFaults.flatMap(({ c }) =>
    meanHistogram(c).map((count, bucket) => ({ series: c.label, bucket, count })));
  const runs = meanOf(withFaults.map(({ c }) => c.results.length));
  const histHow = `QEMU's postcopy-latency-dist: bar N counts the faults whose latency was in [2^N µs, 2^(N+1) µs), labelled by its lower bound 2^N µs;`
    + ` the first bucket also holds everything under 1 µs, the last everything above. Only the buckets from the first to the last with a fault are drawn.`
    + (series.length > 1 ? ` Each configuration has its own bar per bucket${runs ? ', the mean over its replications' : ''}: side by side, or in a strip of its own with its own y scale when there are too many to be read side by side.` : '');
  return [
    { id: 'plot-latency-cdf', name: 'latency-cdf', heading: 'Fault latency CDF', how: cdfHow, spec: latencyCdfSpec(cdfPoints, series) },
    {
      id: 'plot-latency-histogram', name: 'latency-histogram', heading: 'Fault latency histogram (log2 buckets)', how: histHow,
      spec: histogramSpec(bars, series, titled('faults', 'count', runs ?? '')),
    },
  ];
}

const single = (xs: readonly number[]): number | undefined => (new Set(xs).size === 1 ? xs[0] : undefined);

/** Ring occupancy (share of time) and pages resident over time, for the runs that recorded a timeline. */
function timelineSections(configs: readonly Config[], sweep: boolean): Section[] {
  const withTimeline = configs.flatMap((c) => {
    const tl = firstTimeline(c);
    return tl ? [{ c, ...tl }] : [];
  });
  if (withTimeline.length === 0) {
    return [note('note-timeline', 'Ring occupancy and pages resident over time', sweep
      ? 'The sweep\'s runs had no timeline. Add timeline.samples: 1000 to the sweep file\'s base set (the same as --set timeline.samples=1000 for one run) and run it again to plot these.'
      : 'This run had no timeline. Run it again with --timeline (or --set timeline.samples=1000) to plot these.')];
  }
  const series = withTimeline.map(({ c }) => c.label);
  const results: RunResult[] = withTimeline.map((x) => x.result);
  const interval = single(withTimeline.map((x) => x.timeline.intervalNs));
  const sampled = interval === undefined ? '' : ` Sampled every ${formatMicros(interval / 1000)} of simulated time.`;
  const leftOut = withTimeline.length < configs.length ? ` (${configs.length - withTimeline.length} configuration(s) without one are left out)` : '';
  const capacity = single(results.map((r) => r.emulator.ring.capacity));
  const pageSize = single(results.map((r) => r.ram['page-size']));
  const pages = single(results.map((r) => r.ram.total / r.ram['page-size']));

  const occ = occupancyShares(withTimeline.map(({ c }) => c));
  const ringHow = 'Each bar is the share of the run\'s time during which that many slots of the destination\'s paging ring held an unanswered request, estimated from the timeline samples.'
    + (capacity !== undefined
      ? ` The bar at ${capacity} slots (the ring's capacity) is the time the ring was full, when the next request got EBUSY and was retried.`
      : ' A configuration\'s ring is full at its ring.capacity; then the next request gets EBUSY and is retried.')
    + (occ.binned ? ' Occupancies are grouped into ranges of equal width.' : '')
    + sampled
    + (sweep ? ` One bar per configuration and occupancy, averaged over the configuration's replications with a timeline${leftOut}.` : '');

  const scale = timeScale(Math.max(...withTimeline.map(({ timeline }) => timeline.t.at(-1) ?? 0)));
  const points: TimePoint[] = withTimeline.flatMap(({ c, timeline }) =>
    timeline.t.map((t, i) => ({ series: c.label, t: t / scale.div, v: timeline.pagesResident[i]! })));
  const pagesHow = 'Guest pages present at the destination. The slope is the rate at which pages arrive; a flat stretch is time in which none did.'
    + (pages !== undefined ? ` The dashed line is all ${pages} pages of the guest.` : '')
    + sampled
    + (sweep ? ` One line per configuration, from its first replication with a timeline${leftOut}.` : '');
  const pageUnit = pageSize === undefined ? 'pages' : `pages of ${pageSize % 1024 === 0 ? `${pageSize / 1024} KiB` : `${pageSize} bytes`}`;
  return [
    {
      id: 'plot-ring-occupancy', name: 'ring-occupancy', heading: 'Ring occupancy: share of time at each occupancy', how: ringHow,
      spec: occupancySpec(occ.bars, series, occ.categories, titled('share of time', '%', meanOf(occ.runs) ?? '')),
    },
    {
      id: 'plot-pages-resident', name: 'pages-resident', heading: 'Pages resident at the destination over time', how: pagesHow,
      spec: timelineSpec('Pages resident over time', points, series, titled('simulated time', scale.unit), titled('pages resident', pageUnit), pages),
    },
  ];
}
