import { basename, resolve } from 'node:path';
import { UsageError } from '../io/errors.ts';
import { CDF_QUANTILES } from '../metrics/report.ts';
import {
  BUCKET_LABELS, formatMicros, geometric, histogramSpec, latencyCdfSpec, metricSpec, renderSvg, timelineSpec,
  type CdfPoint, type HistogramBar, type TimePoint,
} from './charts.ts';
import {
  axesOf, configsOf, firstTimeline, formatValue, meanCdf, meanHistogram, metricPoints, resolveAxis, resolveMetric,
  type Config,
} from './configs.ts';
import { figure, note, page } from './html.ts';
import type { ReportInput, RunResult, SweepInput, Timeline } from './input.ts';
import { failedRuns, runSummary, sweepSummary } from './summary.ts';

export interface ReportOptions {
  /** Dotted path of a number in the run result, for the sweep's metric chart (default downtime). */
  metric?: string;
  /** The sweep axis on the metric chart's x (default the first axis). */
  axis?: string;
}

/** The report of a run or a sweep as one self-contained HTML page. */
export async function renderReport(input: ReportInput, o: ReportOptions = {}): Promise<string> {
  const configs = configsOf(input);
  if (input.kind === 'run') {
    if (o.metric !== undefined || o.axis !== undefined) throw new UsageError('--metric and --axis apply to a sweep directory, not a single run');
    const r = input.result;
    const meta: [string, string][] = [
      ['input', basename(input.path)], ['scenario', r.emulator.scenario], ['seed', String(r.emulator.seed)], ['status', r.status],
    ];
    const sections = [runSummary(configs[0]!), ...(await distributionSections(configs, false)), ...(await timelineSections(configs, false))];
    return page(`postcopy-emu report: ${configs[0]!.label}`, meta, sections);
  }
  const metricChart = await metricSection(input, configs, o);
  const failed = failedRuns(configs);
  const sections = [
    metricChart,
    sweepSummary(configs, axesOf(input)),
    ...(await distributionSections(configs, true)),
    ...(await timelineSections(configs, true)),
    ...(failed ? [failed] : []),
  ];
  return page(`postcopy-emu sweep report: ${basename(resolve(input.dir))}`, sweepMeta(input), sections);
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

async function metricSection(input: SweepInput, configs: readonly Config[], o: ReportOptions): Promise<string> {
  const axis = resolveAxis(input, o.axis);
  const metric = resolveMetric(configs, o.metric ?? 'downtime');
  const points = metricPoints(input, configs, metric, axis);
  const spec = metricSpec(points, input.manifest.sweep.axes[axis]!, axis, metric);
  const others = axesOf(input).filter((a) => a !== axis);
  const spread = points.some((p) => p.n > 1) ? ' The vertical bar through a point spans its smallest to its largest replication.' : '';
  const how = `Each point is one configuration: the mean of ${metric} over its successful replications, against ${axis}.`
    + (others.length > 0 ? ` Each line holds ${others.join(' and ')} fixed at the values its legend names.` : '')
    + spread
    + (geometric(points.map((p) => p.x)) ? ` The ${axis} axis is logarithmic.` : '')
    + ' Values are in the run JSON\'s units (times in ms, latencies in ns, sizes in bytes).'
    + ' Plot another figure with --metric PATH (any number in the run JSON, e.g. emulator.ring.time-full) and --axis PATH.';
  return figure('plot-metric', `${metric} against ${axis}`, how, await renderSvg(spec));
}

/** The fault-latency CDF and the log2 histogram, or a note when no run had a fault. */
async function distributionSections(configs: readonly Config[], sweep: boolean): Promise<string[]> {
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
    meanHistogram(c).map((count, i) => ({ series: c.label, bucket: BUCKET_LABELS[i]!, count })));
  const histHow = `QEMU's postcopy-latency-dist: bar N counts the faults whose latency was in [2^N µs, 2^(N+1) µs), labelled by its lower bound;`
    + ` the first bar also holds everything under 1 µs, the last everything above.`
    + (sweep && series.length > 1 ? ' Bars of one bucket stand side by side, one per configuration, each the mean over its replications.' : '');
  return [
    figure('plot-latency-cdf', 'Fault latency CDF', cdfHow, await renderSvg(latencyCdfSpec(cdfPoints, series))),
    figure('plot-latency-histogram', 'Fault latency histogram (log2 buckets)', histHow,
      await renderSvg(histogramSpec(bars, series, sweep ? 'faults (mean over replications)' : 'faults'))),
  ];
}

const single = (xs: readonly number[]): number | undefined => (new Set(xs).size === 1 ? xs[0] : undefined);

/** Ring occupancy and pages resident over time, for the runs that recorded a timeline. */
async function timelineSections(configs: readonly Config[], sweep: boolean): Promise<string[]> {
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
  const points = (pick: (t: Timeline) => number[]): TimePoint[] => withTimeline.flatMap(({ c, timeline }) => {
    const ys = pick(timeline);
    return timeline.t.map((t, i) => ({ series: c.label, s: t / 1e9, v: ys[i]! }));
  });
  const results: RunResult[] = withTimeline.map((x) => x.result);
  const interval = single(withTimeline.map((x) => x.timeline.intervalNs));
  const sampled = interval === undefined ? '' : ` Sampled every ${formatMicros(interval / 1000)}.`;
  const which = sweep ? ` One line per configuration, from its first replication with a timeline${withTimeline.length < configs.length ? ` (${configs.length - withTimeline.length} configuration(s) without one are left out)` : ''}.` : '';
  const capacity = single(results.map((r) => r.emulator.ring.capacity));
  const pages = single(results.map((r) => r.ram.total / r.ram['page-size']));
  const ringHow = 'Slots of the destination\'s paging ring holding an unanswered request.'
    + (capacity !== undefined ? ` The dashed line is the ring's capacity (${capacity}): while the line touches it the ring is full, and the next request gets EBUSY and is retried.` : '')
    + sampled + which;
  const pagesHow = 'Guest pages present at the destination. The slope is the rate at which pages arrive; a flat stretch is time in which none did.'
    + (pages !== undefined ? ` The dashed line is all ${pages} pages of the guest.` : '')
    + sampled + which;
  return [
    figure('plot-ring-occupancy', 'Ring occupancy over time', ringHow, await renderSvg(
      timelineSpec('Ring occupancy over time', points((t) => t.ringOccupancy), series, 'ring slots in use', { step: true, limit: capacity }))),
    figure('plot-pages-resident', 'Pages resident at the destination over time', pagesHow, await renderSvg(
      timelineSpec('Pages resident over time', points((t) => t.pagesResident), series, 'pages resident', { step: false, limit: pages }))),
  ];
}
