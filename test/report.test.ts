import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliHarness } from './cli-harness.ts';
import { UsageError } from '../src/io/errors.ts';
import { buildReport } from '../src/report/build.ts';
import { bucketLabels, formatMicros, geometric, renderSvg } from '../src/report/charts.ts';
import { configsOf, meanCdf, metricPoints, type Config } from '../src/report/configs.ts';
import { loadReportInput, type RunResult, type SweepInput } from '../src/report/input.ts';
import { occupancyShares } from '../src/report/occupancy.ts';
import { meanOf, metricUnit, paramUnit } from '../src/report/units.ts';
import { writeReport } from '../src/report/write.ts';
import { axisTitles, barWidths, colourRanges, objects, runResult, writeSweep, writeWideSweep, type Json } from './report-fixture.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'postcopy-emu-report-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Result = {
  downtime: number; 'postcopy-latency-dist': number[];
  emulator: { 'fault-latency': { count: number; cdf: number[] }; timeline: { t: number[]; ringOccupancy: number[] } };
};

let run: Result;
let runJson: string, plainJson: string, sweepDir: string, plainSweepDir: string;
beforeAll(async () => {
  runJson = join(dir, 'storm.json');
  expect(await cli('run', '--preset', 'xen-2017-pure', '--set', 'memory.pages=16384', '--set', 'workload.region={start: 4096, count: 4096}',
    '--timeline', '--json', runJson)).toMatchObject({ code: 0 });
  run = JSON.parse(readFileSync(runJson, 'utf8')) as Result;
  plainJson = join(dir, 'plain.json');
  writeFileSync(plainJson, JSON.stringify(runResult([])));
  sweepDir = join(dir, 'sweep');
  writeSweep(sweepDir, { timeline: true });
  plainSweepDir = join(dir, 'plain-sweep');
  writeSweep(plainSweepDir, { timeline: false });
});

const cli = cliHarness();


/** The inner HTML of `<figure id=ID>`, or null. */
function figureOf(html: string, id: string): string | null {
  return new RegExp(`<figure id="${id}">([\\s\\S]*?)</figure>`).exec(html)?.[1] ?? null;
}

/** The aria-labels of the data marks of one kind (line, rect, symbol, rule): one per mark element. */
function marks(svg: string, kind: string): string[] {
  const out: string[] = [];
  for (const g of svg.matchAll(new RegExp(`<g class="mark-${kind} role-mark[^"]*"[^>]*>((?:<(?:path|line)[^>]*/>)*)</g>`, 'g'))) {
    for (const m of g[1]!.matchAll(/<(?:path|line) aria-label="([^"]*)"/g)) out.push(m[1]!);
  }
  return out;
}

/** The `d` of each line mark's path. */
const linePaths = (svg: string) => [...svg.matchAll(/<g class="mark-line role-mark[^"]*"[^>]*><path [^>]*\bd="([^"]*)"/g)].map((m) => m[1]!);

/** The page with the SVG namespace declarations removed: any URL left would be fetched or followed. */
const withoutNamespaces = (html: string) => html.replace(/ xmlns(:xlink)?="http:\/\/www\.w3\.org\/[^"]*"/g, '');

describe('report of one run', () => {
  let html: string;
  beforeAll(async () => {
    const r = await cli('report', runJson);
    expect(r).toMatchObject({ code: 0, out: `${join(dir, 'storm.html')}\n` });
    html = readFileSync(join(dir, 'storm.html'), 'utf8');
  });

  it('is one self-contained page: no scripts, stylesheets, fonts or images to fetch', () => {
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).not.toMatch(/<script|<link|<img|<iframe|@import|url\(\s*['"]?http|src=/i);
    expect(withoutNamespaces(html)).not.toMatch(/https?:\/\//);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('has the four plots, each an SVG with data marks', () => {
    const ids = [...html.matchAll(/<figure id="([^"]+)"/g)].map((m) => m[1]);
    expect(ids).toEqual(['plot-latency-cdf', 'plot-latency-histogram', 'plot-ring-occupancy', 'plot-pages-resident']);
    for (const id of ids) {
      const fig = figureOf(html, id!)!;
      expect(fig).toMatch(/<h2>[^<]+<\/h2><p>[^<]{80,}<\/p>/);
      expect(fig).toContain('<svg ');
      expect(fig).toMatch(/ d="M\d/);
    }
  });

  it('plots the 21 CDF quantiles at their latencies in µs', () => {
    const points = marks(figureOf(html, 'plot-latency-cdf')!, 'symbol');
    expect(points).toHaveLength(21);
    const cdf = run.emulator['fault-latency'].cdf;
    expect(points[0]).toContain('faults answered within x (%): 0%;');
    expect(points[20]).toContain(`fault latency (µs, log scale): ${cdf[20]! / 1000};`);
    expect(points[20]).toContain('faults answered within x (%): 100%;');
    expect(linePaths(figureOf(html, 'plot-latency-cdf')!)).toHaveLength(1);
  });

  it('draws the log2 buckets from the first to the last with a fault, with their counts and labels', () => {
    const bars = marks(figureOf(html, 'plot-latency-histogram')!, 'rect');
    const dist = run['postcopy-latency-dist'];
    expect(dist.reduce((a, b) => a + b, 0)).toBe(run.emulator['fault-latency'].count);
    // Buckets 10 … 15 (1,024 µs … 32,768 µs): the buckets outside are empty.
    const first = dist.findIndex((n) => n > 0), last = dist.length - 1 - [...dist].reverse().findIndex((n) => n > 0);
    expect([first, last]).toEqual([10, 15]);
    const labels = ['1,024', '2,048', '4,096', '8,192', '16,384', '32,768'];
    expect(bars).toHaveLength(labels.length);
    bars.forEach((b, i) => expect(b).toContain(`fault latency bucket (µs, lower bound): ${labels[i]}; faults (count): ${dist[first + i]};`));
    expect(figureOf(html, 'plot-latency-histogram')).toMatch(/>1,024<.*>2,048<.*>8,192<.*>32,768<.*>fault latency bucket \(µs, lower bound\)</s);
  });

  it('draws the share of time at each ring occupancy, and pages resident over every sample', () => {
    const occ = run.emulator.timeline.ringOccupancy;
    const n = occ.length;
    expect(n).toBeGreaterThan(500);
    const bars = marks(figureOf(html, 'plot-ring-occupancy')!, 'rect');
    // The storm's ring is either empty or full (8 slots): a bar per occupancy 0…8.
    expect(bars).toHaveLength(9);
    const full = occ.filter((v) => v === 8).length / n;
    expect(full).toBeGreaterThan(0.3);
    expect(bars[8]).toBe(`ring occupancy (slots holding a request): 8; share of time (%): ${Math.round(full * 100)}%; series: xen-2017-pure`);
    expect(bars[3]).toBe('ring occupancy (slots holding a request): 3; share of time (%): 0%; series: xen-2017-pure');
    expect(figureOf(html, 'plot-ring-occupancy')).toContain('The bar at 8 slots (the ring\'s capacity) is the time the ring was full');
    const pages = figureOf(html, 'plot-pages-resident')!;
    expect(pages).toContain('stroke-dasharray="6,4"');
    expect(linePaths(pages)[0]!.split('L')).toHaveLength(n);
    expect(pages).toContain('all 16384 pages');
  });

  it('tabulates the main figures', () => {
    expect(html).toContain('<td class="label">downtime (ms)</td>');
    expect(html).toContain(`<td>${run.downtime.toLocaleString('en-US', { maximumFractionDigits: 3 })}</td>`);
    expect(html).toContain(`<td class="label">faults</td><td>${run.emulator['fault-latency'].count.toLocaleString('en-US')}</td>`);
    expect(html).toContain('<title>postcopy-emu report: xen-2017-pure</title>');
  });

  it('gives every element id once, and renders the same bytes twice', async () => {
    const ids = [...html.matchAll(/\bid="([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(ids).size).toBe(ids.length);
    // Same file name elsewhere: the page names its spec files after its own name.
    const again = join(mkdtempSync(join(tmpdir(), 'postcopy-emu-report-again-')), 'storm.html');
    expect((await cli('report', runJson, '-o', again)).code).toBe(0);
    expect(readFileSync(again, 'utf8')).toBe(html);
  });

  it('says how to get a timeline when the run has none', async () => {
    expect((await cli('report', plainJson)).code).toBe(0);
    const plain = readFileSync(join(dir, 'plain.html'), 'utf8');
    expect(figureOf(plain, 'plot-ring-occupancy')).toBeNull();
    expect(plain).toMatch(/<section class="note" id="note-timeline">.*--timeline \(or --set timeline.samples=1000\)/);
    expect(figureOf(plain, 'plot-latency-cdf')).toContain('<svg ');
  });
});

describe('report of a run with devices', () => {
  it('splits the downtime into its parts, one stacked bar, the parts in the order they happen', async () => {
    const json = join(dir, 'vfio.json');
    expect((await cli('run', '--preset', 'vfio-000-2vf-cold', '--json', json)).code).toBe(0);
    const r = JSON.parse(readFileSync(json, 'utf8')) as { downtime: number; emulator: { 'downtime-breakdown': Record<string, number> } };
    expect((await cli('report', json)).code).toBe(0);
    const html = readFileSync(join(dir, 'vfio.html'), 'utf8');
    expect([...html.matchAll(/<figure id="([^"]+)"/g)].map((m) => m[1])).toEqual(['plot-downtime']);
    const fig = figureOf(html, 'plot-downtime')!;
    expect(fig).toContain('<svg ');
    // One bar piece per non-zero part: all but the stop arcs, which cost nothing in seed 000's preset.
    const nonZero = Object.values(r.emulator['downtime-breakdown']).filter((ms) => ms > 0).length;
    expect(nonZero).toBe(6);
    expect(r.emulator['downtime-breakdown']['device-stop-ms']).toBe(0);
    expect(marks(fig, 'rect').length).toBeGreaterThanOrEqual(nonZero);
    expect(fig).toMatch(/>device stop arcs<.*>RAM: final sync and send<.*>device load and start<.*>destination switchover</s);
    // The xen-2017-pure run above has no precopy and no devices: no such figure there.
    expect(figureOf(readFileSync(join(dir, 'storm.html'), 'utf8'), 'plot-downtime')).toBeNull();
  });
});

describe('report of a sweep', () => {
  let html: string;
  beforeAll(async () => {
    expect(await cli('report', sweepDir)).toMatchObject({ code: 0, out: `${join(sweepDir, 'report.html')}\n` });
    html = readFileSync(join(sweepDir, 'report.html'), 'utf8');
  });

  it('draws downtime against the first axis, a line per value of the other', () => {
    const fig = figureOf(html, 'plot-metric')!;
    expect(fig).toContain('<h2>downtime against ring.capacity</h2>');
    expect(linePaths(fig)).toHaveLength(2);
    const points = marks(fig, 'symbol');
    expect(points).toHaveLength(4);
    expect(points.filter((p) => p.includes('series: mapper.request=range'))).toHaveLength(2);
    // Replication spread: one bar per configuration.
    expect(marks(fig, 'rule')).toHaveLength(4);
    expect(fig).toMatch(/>mapper.request=page<.*>mapper.request=range</s);
  });

  it('averages the metric over the successful replications', () => {
    const input = loadReportInput(sweepDir) as SweepInput;
    const configs = configsOf(input);
    expect(configs.map((c) => [c.label, c.results.length, c.failed.length])).toEqual([
      ['ring.capacity=2, mapper.request=page', 2, 0],
      ['ring.capacity=2, mapper.request=range', 2, 0],
      ['ring.capacity=8, mapper.request=page', 2, 0],
      ['ring.capacity=8, mapper.request=range', 1, 1],
    ]);
    const downtimes = input.records.map((r) => r.result?.downtime);
    const points = metricPoints(input, configs, 'downtime', 'ring.capacity');
    expect(points.map((p) => [p.x, p.series, p.n])).toEqual([
      [2, 'mapper.request=page', 2], [2, 'mapper.request=range', 2], [8, 'mapper.request=page', 2], [8, 'mapper.request=range', 1],
    ]);
    expect(points[0]!.mean).toBeCloseTo((downtimes[0]! + downtimes[1]!) / 2, 9);
    expect(points[3]).toMatchObject({ mean: downtimes[6], min: downtimes[6], max: downtimes[6] });
    // The CDF of a configuration is the mean of its replications' quantiles.
    const cdfs = input.records.slice(4, 6).map((r) => r.result!.emulator['fault-latency'].cdf);
    expect(meanCdf(configs[2]!)![10]).toBe((cdfs[0]![10]! + cdfs[1]![10]!) / 2);
    expect(input.tornLines).toBe(1);
  });

  it('has a CDF line, a bar per used bucket and per ring occupancy for each configuration, and the timelines', () => {
    expect(linePaths(figureOf(html, 'plot-latency-cdf')!)).toHaveLength(4);
    expect(marks(figureOf(html, 'plot-latency-cdf')!, 'symbol')).toHaveLength(84);
    // Buckets 1 ms (the page configurations' first) … 262 ms (the range ones' single slow fault).
    const hist = marks(figureOf(html, 'plot-latency-histogram')!, 'rect');
    expect(hist).toHaveLength(4 * 9);
    expect(hist[0]).toMatch(/^fault latency bucket \(ms, lower bound\): 1.02; faults \(count, mean of 1–2 runs\): [\d.]+; series: ring.capacity=2, mapper.request=page$/);
    // Occupancies 0…8 (the largest ring's capacity) for each of the 4 configurations.
    expect(marks(figureOf(html, 'plot-ring-occupancy')!, 'rect')).toHaveLength(4 * 9);
    expect(linePaths(figureOf(html, 'plot-pages-resident')!)).toHaveLength(4);
  });

  it('tabulates each configuration and lists the failed run with its error', () => {
    const summary = /<table id="summary">([\s\S]*?)<\/table>/.exec(html)![1]!;
    expect(summary.match(/<tr>/g)).toHaveLength(5);
    expect(summary).toContain('<th class="label">ring.capacity</th><th class="label">mapper.request</th><th>runs ok</th>');
    expect(summary).toContain('<td class="label">8</td><td class="label">range</td><td>1/2</td><td>completed</td>');
    expect(summary).toContain('<td class="label">2</td><td class="label">page</td><td>2/2</td><td>completed ×2</td>');
    const failed = /<table id="failed">([\s\S]*?)<\/table>/.exec(html)![1]!;
    expect(failed).toContain('<td class="label">7</td><td class="label">ring.capacity=8, mapper.request=range</td><td>1</td><td>worker crashed: out of memory</td>');
    expect(html).toContain('<dd>8 of 8 recorded, 1 failed; 1 unreadable line(s) of an interrupted sweep skipped</dd>');
    expect(html).toContain('<dd>postcopy-emu 0.1.0 (abcdef012345)</dd>');
  });

  it('plots any metric against any axis', async () => {
    const out = join(dir, 'ebusy.html');
    expect((await cli('report', sweepDir, '-o', out, '--metric', 'result.emulator.ring.ebusy', '--axis', 'mapper.request')).code).toBe(0);
    const fig = figureOf(readFileSync(out, 'utf8'), 'plot-metric')!;
    expect(fig).toContain('<h2>emulator.ring.ebusy against mapper.request</h2>');
    expect(fig).toMatch(/>ring.capacity=2<.*>ring.capacity=8</s);
    const points = marks(fig, 'symbol');
    expect(points).toHaveLength(4);
    expect(points[0]).toMatch(/^mapper.request: page; emulator.ring.ebusy \(requests, mean of 1–2 runs\): [\d,.]+; series: ring.capacity=2$/);
  });

  it('says how to get timelines when the runs have none', async () => {
    expect((await cli('report', plainSweepDir)).code).toBe(0);
    const plain = readFileSync(join(plainSweepDir, 'report.html'), 'utf8');
    expect(figureOf(plain, 'plot-pages-resident')).toBeNull();
    expect(plain).toMatch(/id="note-timeline">.*The sweep's runs had no timeline\..*--set timeline.samples=1000/);
  });
});

const PLOTS = ['metric', 'latency-cdf', 'latency-histogram', 'ring-occupancy', 'pages-resident'];
const IDS = ['plot-metric', 'plot-latency-cdf', 'plot-latency-histogram', 'plot-ring-occupancy', 'plot-pages-resident'];

describe('Vega-Lite specs beside the report', () => {
  let written: string[];
  let html: string;
  let specs: Json[];
  beforeAll(async () => {
    mkdirSync(join(dir, 'vl'));
    written = await writeReport(loadReportInput(sweepDir), join(dir, 'vl', 'report.html'));
    html = readFileSync(written[0]!, 'utf8');
    specs = written.slice(1).map((f) => JSON.parse(readFileSync(f, 'utf8')) as Json);
  });

  it('writes one per plot, named on the page under its plot, that renders the SVG on the page', async () => {
    expect(written.map((f) => basename(f))).toEqual(['report.html', ...PLOTS.map((p) => `report-${p}.vl.json`)]);
    expect(html).toContain('(<code>report-*.vl.json</code>, named under each plot)');
    expect(html).toContain('<code>alt.Chart.from_dict(json.load(open(FILE)))</code>');
    for (const [i, spec] of specs.entries()) {
      const fig = figureOf(html, IDS[i]!)!;
      expect(fig).toContain(`<p class="spec">Vega-Lite spec with its data: <code>report-${PLOTS[i]}.vl.json</code></p>`);
      expect(spec['$schema']).toBe('https://vega.github.io/schema/vega-lite/v6.json');
      expect(spec['data'].values.length).toBeGreaterThan(3);
      expect(fig).toContain(await renderSvg(spec as never));
    }
    // The CLI writes them too, beside the page it names them on.
    expect(readFileSync(join(sweepDir, 'report.html'), 'utf8')).toContain('(<code>report-*.vl.json</code>, named under each plot)');
    for (const p of PLOTS) expect(existsSync(join(sweepDir, `report-${p}.vl.json`))).toBe(true);
  });

  it('puts a unit in parentheses in every axis title', () => {
    expect(specs.map(axisTitles)).toEqual([
      ['ring.capacity (slots)', 'downtime (ms, mean of 1–2 runs)'],
      ['fault latency (µs, log scale)', 'faults answered within x (%)'],
      ['fault latency bucket (ms, lower bound)', 'faults (count, mean of 1–2 runs)'],
      ['ring occupancy (slots holding a request)', 'share of time (%, mean of 1–2 runs)'],
      ['simulated time (ms)', 'pages resident (pages of 4 KiB)'],
    ]);
    for (const t of specs.flatMap(axisTitles)) expect(t).toMatch(/^[^()]+ \((ms|µs|%|count|slots|pages)([ ,][^()]+)?\)$/);
  });

  it('gives each configuration its own colour, the same in every plot', () => {
    const labels = configsOf(loadReportInput(sweepDir)).map((c) => c.label);
    const [metric, ...rest] = specs.map(colourRanges);
    expect(new Set(metric!.flat())).toEqual(new Set(['#4c78a8', '#f58518']));
    for (const ranges of rest) {
      expect(ranges).toEqual([['#4c78a8', '#f58518', '#e45756', '#72b7b2']]);
    }
    expect([...objects(specs[1])].find((o) => o['encoding']?.color)!['encoding'].color.scale.domain).toEqual(labels);
  });

  it('sets every font at 11 px or more', () => {
    for (const spec of specs) {
      const sizes = [...objects(spec)].flatMap((o) => Object.entries(o).filter(([k]) => /fontsize$/i.test(k)).map(([, v]) => v as number));
      expect(sizes.length).toBeGreaterThanOrEqual(6);
      expect(Math.min(...sizes)).toBeGreaterThanOrEqual(11);
      expect(spec['config']).toMatchObject({ axis: { labelFontSize: 12, titleFontSize: 13 }, legend: { labelFontSize: 12 }, header: { labelFontSize: 12 } });
    }
  });

  it('draws bars at least 9 px wide, and a strip per configuration when they would be thinner or colours run out', async () => {
    const bars = [figureOf(html, 'plot-latency-histogram')!, figureOf(html, 'plot-ring-occupancy')!].map(barWidths);
    expect(bars.map((b) => b.length)).toEqual([4 * 9, 4 * 9]);
    expect(Math.min(...bars.flat())).toBeGreaterThanOrEqual(9);
    // 14 configurations: 14 distinct colours; their histogram (14 × 8 bars) becomes 14 strips.
    const wide = async (n: number) => {
      writeWideSweep(join(dir, `wide${n}`), n);
      return (await buildReport(loadReportInput(join(dir, `wide${n}`)), { specStem: 'r' })).specs.map((x) => x.spec as Json);
    };
    const wide14 = await wide(14);
    expect(new Set(colourRanges(wide14[1]!)[0]).size).toBe(14);
    expect(wide14[2]!['facet'].row.field).toBe('series');
    expect(new Set(colourRanges(wide14[2]!)[0]).size).toBe(14);
    expect(Math.min(...barWidths(await renderSvg(wide14[2] as never)))).toBeGreaterThanOrEqual(30);
    // 24: more than 20 colours can tell apart, so every plot with a series per configuration is in strips, in one colour.
    for (const spec of (await wide(24)).slice(1)) {
      expect(spec['facet'].row).toMatchObject({ field: 'series', title: expect.stringMatching(/\(.+\)$/) });
      expect(colourRanges(spec)).toEqual([]);
    }
  });

  it('names the file it cannot write, and writes nothing', async () => {
    const out = join(dir, 'no-dir', 'r.html');
    await expect(writeReport(loadReportInput(sweepDir), out)).rejects.toThrow(UsageError);
    await expect(writeReport(loadReportInput(sweepDir), out)).rejects.toThrow(/^cannot write [^:]*r\.html: (ENOENT|no such directory)$/);
    expect(existsSync(join(dir, 'no-dir'))).toBe(false);
  });
});

describe('helpers', () => {
  it('knows the unit of each run-result number and sweep axis', () => {
    expect(['downtime', 'result.total-time', 'emulator.fault-latency.p99', 'ram.transferred', 'emulator.ring.ebusy', 'emulator.faults.network-share', 'postcopy-latency-dist.3', 'emulator.seed', 'emulator.nope']
      .map(metricUnit)).toEqual(['ms', 'ms', 'ns', 'bytes', 'requests', 'fraction', 'faults', null, null]);
    expect([['ring.capacity', [2, 8]], ['link.rateMbps', [1000]], ['pager.evictPerPfnNs', [3000]], ['memory.pages', [16384]],
      ['workload.vcpus', [4]], ['source.pivots', [1, 7]], ['preempt.share', [0.5]], ['mapper.request', ['page']], ['limits.stopAt', ['resume']]]
      .map(([a, v]) => paramUnit(a as string, v as unknown[]))).toEqual(['slots', 'Mbit/s', 'ns', 'pages', 'vCPUs', 'pivots', 'fraction', null, null]);
    expect([meanOf([2, 2]), meanOf([1, 2, 2]), meanOf([1, 1])]).toEqual(['mean of 2 runs', 'mean of 1–2 runs', null]);
  });

  it('averages the share of time at each ring occupancy, in ranges on a large ring', () => {
    const config = (label: string, ...occupancies: number[][]): Config => ({
      index: 0, label, params: {}, failed: [],
      results: occupancies.map((o) => ({ emulator: { timeline: { ringOccupancy: o } } }) as unknown as RunResult),
    });
    const small = occupancyShares([config('a', [0, 0, 1, 2], [2, 2, 2, 2]), config('b', [1])]);
    expect(small.categories).toEqual(['0', '1', '2']);
    expect(small.bars.map((b) => [b.series, b.slots, b.share])).toEqual([
      ['a', '0', 0.25], ['a', '1', 0.125], ['a', '2', 0.625], ['b', '0', 0], ['b', '1', 1], ['b', '2', 0],
    ]);
    expect(small.runs).toEqual([2, 1]);
    const large = occupancyShares([config('big', [0, 100, 100, 50])]);
    expect(large.binned).toBe(true);
    // 0…100 in 26 ranges of 4: the last holds 100 alone.
    expect(large.categories).toHaveLength(26);
    expect([large.categories[0], large.categories[12], large.categories[25]]).toEqual(['0–3', '48–51', '100']);
    expect(large.bars.filter((b) => b.share > 0).map((b) => [b.slots, b.share])).toEqual([['0–3', 0.25], ['48–51', 0.25], ['100', 0.5]]);
  });

  it('labels buckets by their lower bound, in µs while labels have at most 5 digits, else in ms', () => {
    expect(bucketLabels(0, 16)).toMatchObject({ unit: 'µs', labels: expect.arrayContaining(['1', '2', '1,024', '65,536']) });
    expect(bucketLabels(5, 18)).toMatchObject({ unit: 'ms', labels: expect.arrayContaining(['0.032', '1.02', '262']) });
    expect(bucketLabels(20, 23)).toEqual({ unit: 'ms', labels: ['1,050', '2,100', '4,190', '≥ 8,390'] });
    expect(formatMicros(400)).toBe('400 µs');
    expect(formatMicros(1600)).toBe('1.6 ms');
  });

  it('puts geometric axes on a log scale only', () => {
    expect(geometric([1, 2, 4, 8, 16])).toBe(true);
    expect(geometric([1000, 10_000, 100_000])).toBe(true);
    expect(geometric([2, 8])).toBe(false);
    expect(geometric([10, 20, 30, 40, 50, 60, 70, 80, 90])).toBe(false);
    expect(geometric(['page', 'range'])).toBe(false);
  });
});

describe('bad input: one line on stderr, exit 2, nothing written', () => {
  const bad = async (args: string[], message: RegExp) => {
    const before = readdirSync(dir).length;
    const r = await cli('report', ...args);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
    expect(r.err.split('\n')).toHaveLength(2);
    expect(readdirSync(dir).length).toBe(before);
  };

  it('a missing file', () => bad([join(dir, 'nope.json')], /^postcopy-emu: cannot read .*nope\.json: ENOENT\n$/));

  it('a file that is not JSON, or not a run result', async () => {
    const text = join(dir, 'text.json');
    writeFileSync(text, 'hello');
    await bad([text], /text\.json is not JSON: /);
    const other = join(dir, 'other.json');
    writeFileSync(other, JSON.stringify({ status: 'completed', downtime: 1 }));
    await bad([other], /other\.json is not a postcopy-emu run result \(run --json\): total-time: /);
  });

  it('a directory that is not a sweep, or holds a bad record', async () => {
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    await bad([empty], /empty is not a sweep directory: it has no manifest\.json/);
    const broken = join(dir, 'broken');
    writeSweep(broken, { timeline: false });
    const lines = readFileSync(join(broken, 'runs.jsonl'), 'utf8').split('\n');
    writeFileSync(join(broken, 'runs.jsonl'), [lines[0], JSON.stringify({ index: 1, config: 0 }), ...lines.slice(2)].join('\n'));
    await bad([broken], /runs\.jsonl line 2 is not a sweep run record: replication: /);
    writeFileSync(join(broken, 'runs.jsonl'), [lines[0]!.replace('"ring.capacity":2,', ''), ...lines.slice(1)].join('\n'));
    await bad([broken], /runs\.jsonl line 1: params has no value for the axis ring\.capacity/);
    writeFileSync(join(broken, 'manifest.json'), JSON.stringify({ tool: 'other' }));
    await bad([broken], /manifest\.json is not a postcopy-emu sweep manifest: tool: /);
    expect(existsSync(join(broken, 'report.html'))).toBe(false);
  });

  it('an axis or metric the sweep does not have', async () => {
    await bad([sweepDir, '--axis', 'link.rateMbps'], /--axis link\.rateMbps: not an axis of this sweep \(axes: ring\.capacity, mapper\.request\)/);
    await bad([sweepDir, '--metric', 'emulator.nope'], /--metric emulator\.nope: no such field/);
    await bad([sweepDir, '--metric', 'status'], /--metric status: not a number in every run \(got "completed"/);
    await bad([runJson, '--metric', 'downtime'], /--metric and --axis apply to a sweep directory/);
  });

  it('an output that cannot be written', () =>
    bad([runJson, '-o', join(dir, 'no-dir', 'r.html')], /^postcopy-emu: cannot write [^:]*r\.html: (ENOENT|no such directory)\n$/));

  it('exits 2 from the installed command too', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'bin/postcopy-emu.mjs'), 'report', join(dir, 'missing')], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^postcopy-emu: cannot read .*missing: ENOENT\n$/);
  });
});
